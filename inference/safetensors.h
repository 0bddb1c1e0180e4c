// SPDX-License-Identifier: GPL-3.0-or-later
// Reading and writing the safetensors format, and the dtype conversions the engine needs.
// Owns: a memory-mapped file and its validated header. Promises: a SafetensorsFile that opened
// successfully has a header that fits inside the file, every tensor's byte range lies inside the
// data area with size = shape x dtype, ranges do not overlap and cover the data area exactly
// (as the format requires). Every failure names the file and the offending tensor or field.
// Never reads a byte outside the mapping, whatever the file says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mapped_file.h"
#include "result.h"

namespace folio::inference {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

size_t dtypeSize(DType dtype);
const char* dtypeName(DType dtype);      // as spelled in safetensors headers: "BF16", ...
bool isFloatingWeightType(DType dtype);  // BF16, F16 or F32: what model weights may use

// Largest header the reader accepts (the reference implementation uses the same bound).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    uint64_t begin = 0;  // byte offsets relative to the data area
    uint64_t end = 0;
    uint64_t elementCount() const;
};

struct SafetensorsHeader {
    uint64_t dataOffset = 0;  // where the data area starts in the file
    uint64_t dataSize = 0;
    std::vector<TensorInfo> tensors;  // in header order
    std::map<std::string, std::string> metadata;
};

// Validates the header of a complete safetensors file held in `file`.
Result<SafetensorsHeader> parseSafetensorsHeader(std::span<const std::byte> file);

// A view of one tensor's bytes inside a mapping; cheap to copy.
struct TensorView {
    std::string_view name;
    DType dtype = DType::F32;
    std::span<const int64_t> shape;
    const std::byte* data = nullptr;
    uint64_t elements = 0;

    int64_t dim(size_t i) const { return shape[i]; }
    std::string shapeString() const;
};

std::string shapeToString(std::span<const int64_t> shape);

// Converts elements [first, first + count) of a BF16/F16/F32 tensor to fp32.
void convertToFloat(const TensorView& tensor, uint64_t first, uint64_t count, float* out);
std::vector<float> toFloatVector(const TensorView& tensor);

float bf16ToFloat(uint16_t bits);
uint16_t floatToBf16(float value);  // round to nearest even; NaN stays NaN
float halfToFloat(uint16_t bits);

class SafetensorsFile {
  public:
    static Result<SafetensorsFile> open(const std::filesystem::path& path);

    const std::filesystem::path& path() const { return path_; }
    const SafetensorsHeader& header() const { return header_; }
    const TensorInfo* find(std::string_view name) const;
    TensorView view(const TensorInfo& info) const;

  private:
    std::filesystem::path path_;
    MappedFile file_;
    SafetensorsHeader header_;
    std::unordered_map<std::string_view, size_t> index_;
};

// One tensor to write. An empty `data` leaves the tensor's bytes as a hole in a sparse file
// (used to lay out very large checkpoints in tests without writing their weights).
struct TensorRecord {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::span<const std::byte> data;
};

Status writeSafetensors(const std::filesystem::path& path, std::span<const TensorRecord> tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace folio::inference
