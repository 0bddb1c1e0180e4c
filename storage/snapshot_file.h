// SPDX-License-Identifier: GPL-3.0-or-later
// Snapshot files: one link of a snapshot chain, i.e. the model state at a source boundary
// stored as only what its parent snapshot lacks.
//
//   offset 0  "FOLIOSNP" | u32 version | u32 header bytes H
//             str model id | str tokenizer id | str prefix key | str parent key ("" = root)
//             i64 token begin | i64 token end | u64 tokens offset | u32 tokens CRC-32C
//             u32 tensor count | per tensor: str name | u8 rank | i64 dims[rank] |
//                                            u64 offset | u64 bytes | u32 CRC-32C
//             u32 CRC-32C of bytes [0, H - 4)
//   padding to 4096; then i32 token ids [begin, end); then each tensor's f32 data, each
//   section starting on a 4096-byte boundary (large aligned sequential reads).
// str = u16 length + bytes. Integers little-endian. Tensors: KDA state and convolution window of
// every KDA layer whole, MLA cache rows [begin, end) only (names as inference::StateTensor).
//
// Owns: the byte format. Promises: a file is written to a temporary name in the same folder,
// flushed (fsync), renamed over its final name and the folder flushed, so a crash leaves either
// no file or a complete one; a write failure (disk full, file size limit) removes the temporary
// file and says why. Reading verifies the header checksum, every offset and length against the
// file size, the chain's links and identities and every tensor's checksum before the state is
// returned: a damaged file is an error naming the file, never a wrong state. Never throws.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "inference/engine_types.h"
#include "inference/result.h"

namespace folio::storage {

inline constexpr uint32_t kSnapshotFormatVersion = 1;

struct SnapshotIdentity {
    std::string modelId;
    std::string tokenizerId;
};

struct SnapshotTensorEntry {
    std::string name;
    std::vector<int64_t> shape;
    uint64_t offset = 0;
    uint64_t bytes = 0;
    uint32_t crc = 0;
};

struct SnapshotHeader {
    SnapshotIdentity identity;
    std::string prefixKey;
    std::string parentKey;
    int64_t tokenBegin = 0;
    int64_t tokenEnd = 0;
    uint64_t tokensOffset = 0;
    uint32_t tokensCrc = 0;
    std::vector<SnapshotTensorEntry> tensors;
    uint64_t fileSize = 0;  // what the header implies
};

// What one link holds: the tokens [tokenBegin, tokenEnd) and the tensors from
// Engine::exportState(sequence, tokenBegin).
struct SnapshotContent {
    SnapshotIdentity identity;
    std::string prefixKey;
    std::string parentKey;
    int64_t tokenBegin = 0;
    std::span<const int32_t> tokens;
    const std::vector<inference::StateTensor>* tensors = nullptr;
};

// Writes `content` to `path` (temporary name, fsync, rename, fsync of the folder). Returns the
// file's size.
Result<uint64_t> writeSnapshotFile(const std::filesystem::path& path,
                                   const SnapshotContent& content);

// Reads and checks the header only.
Result<SnapshotHeader> readSnapshotHeader(const std::filesystem::path& path);

// A whole state rebuilt from a chain of snapshot files.
struct RestoredState {
    std::vector<int32_t> tokens;
    std::vector<inference::StateTensor> tensors;  // complete: MLA rows of the whole chain
    uint64_t bytesRead = 0;
};

// Reads a chain (root first): tokens and MLA rows from every link, the KDA and convolution
// state from the last. On failure `badLink` (when given) is set to the index of the link at
// fault, or -1 when the chain as a whole is inconsistent or memory ran out (OutOfMemory).
// Pipelined: this thread issues large reads (8 MiB, with readahead hints) straight into the
// state's memory while one worker thread verifies the checksums of what has arrived (at most
// 64 MiB read ahead of it) and another allocates the state's tensors in the order the reads
// need them; both are joined before returning. Errors are those of reading link by link: the
// first failing section in file order, named by file and tensor.
Result<RestoredState> readSnapshotChain(std::span<const std::filesystem::path> files,
                                        const SnapshotIdentity& expected, int* badLink = nullptr);

}  // namespace folio::storage
