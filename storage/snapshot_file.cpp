// SPDX-License-Identifier: GPL-3.0-or-later
#include "snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "inference/checksum.h"

namespace folio::storage {
namespace {

constexpr char kMagic[8] = {'F', 'O', 'L', 'I', 'O', 'S', 'N', 'P'};
constexpr uint64_t kAlign = 4096;
constexpr uint32_t kMaxHeaderBytes = 1u << 20;
constexpr uint32_t kMaxTensors = 4096;
constexpr size_t kIoChunk = size_t{16} << 20;

uint64_t alignUp(uint64_t v) {
    return (v + kAlign - 1) / kAlign * kAlign;
}

std::span<const std::byte> asBytes(const void* data, size_t size) {
    return {static_cast<const std::byte*>(data), size};
}

std::string errnoText(int err) {
    std::string text = std::strerror(err);
    if (err == ENOSPC)
        text += " (the disk is full)";
    else if (err == EFBIG)
        text += " (the file size limit was reached)";
    else if (err == EDQUOT)
        text += " (the disk quota is exhausted)";
    return text;
}

// An fd closed on destruction.
class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const { return fd_; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

  private:
    int fd_;
};

class HeaderWriter {
  public:
    template <typename T>
    void value(T v) {
        const auto* p = reinterpret_cast<const std::byte*>(&v);
        bytes.insert(bytes.end(), p, p + sizeof(T));
    }
    void str(const std::string& s) {
        value<uint16_t>(static_cast<uint16_t>(s.size()));
        const auto* p = reinterpret_cast<const std::byte*>(s.data());
        bytes.insert(bytes.end(), p, p + s.size());
    }
    std::vector<std::byte> bytes;
};

class HeaderReader {
  public:
    explicit HeaderReader(std::span<const std::byte> bytes) : bytes_(bytes) {}
    template <typename T>
    bool value(T& out) {
        if (bytes_.size() - pos_ < sizeof(T))
            return false;
        std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }
    bool str(std::string& out) {
        uint16_t n = 0;
        if (!value(n) || bytes_.size() - pos_ < n)
            return false;
        out.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
        pos_ += n;
        return true;
    }
    size_t position() const { return pos_; }

  private:
    std::span<const std::byte> bytes_;
    size_t pos_ = 0;
};

Status writeAll(int fd, std::span<const std::byte> bytes, const std::string& what) {
    size_t done = 0;
    while (done < bytes.size()) {
        const size_t n = std::min(bytes.size() - done, kIoChunk);
        const ssize_t w = ::write(fd, bytes.data() + done, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return makeError(ErrorCode::Io, "cannot write ", what, ": ", errnoText(errno));
        }
        if (w == 0)
            return makeError(ErrorCode::Io, "cannot write ", what, ": no progress");
        done += static_cast<size_t>(w);
    }
    return {};
}

Status readAll(int fd, uint64_t offset, std::byte* out, uint64_t size, const std::string& what) {
    uint64_t done = 0;
    while (done < size) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(size - done, kIoChunk));
        const ssize_t r = ::pread(fd, out + done, n, static_cast<off_t>(offset + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return makeError(ErrorCode::Io, "cannot read ", what, ": ", errnoText(errno));
        }
        if (r == 0)
            return makeError(ErrorCode::Format, what, " ends early");
        done += static_cast<uint64_t>(r);
    }
    return {};
}

// Reads `size` bytes at `offset` into `out` and checks their CRC-32C.
Status readChecked(int fd, uint64_t offset, std::byte* out, uint64_t size, uint32_t crc,
                   const std::string& what) {
    // Chunk by chunk, so each chunk is checksummed while it is still in the cache.
    uint32_t running = 0;
    for (uint64_t done = 0; done < size;) {
        const uint64_t n = std::min<uint64_t>(size - done, kIoChunk);
        FOLIO_TRY(readAll(fd, offset + done, out + done, n, what));
        running = inference::crc32c(running, {out + done, static_cast<size_t>(n)});
        done += n;
    }
    if (running != crc)
        return makeError(ErrorCode::Format, what, ": checksum mismatch (the file is damaged)");
    return {};
}

Status fsyncDirectory(const std::filesystem::path& dir) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0)
        return makeError(ErrorCode::Io, "cannot open ", dir.string(), ": ", errnoText(errno));
    if (::fsync(fd.get()) != 0)
        return makeError(ErrorCode::Io, "cannot flush ", dir.string(), ": ", errnoText(errno));
    return {};
}

Result<SnapshotHeader> parseHeader(int fd, const std::string& name) {
    std::byte start[16];
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return makeError(ErrorCode::Io, "cannot stat ", name, ": ", errnoText(errno));
    if (st.st_size < 16)
        return makeError(ErrorCode::Format, name, " is too short to be a snapshot");
    FOLIO_TRY(readAll(fd, 0, start, 16, name));
    if (std::memcmp(start, kMagic, 8) != 0)
        return makeError(ErrorCode::Format, name, " is not a Folio snapshot (bad magic)");
    uint32_t version = 0, headerBytes = 0;
    std::memcpy(&version, start + 8, 4);
    std::memcpy(&headerBytes, start + 12, 4);
    if (version != kSnapshotFormatVersion)
        return makeError(ErrorCode::Unsupported, name, " has snapshot format version ", version,
                         " (this Folio reads ", kSnapshotFormatVersion, ")");
    if (headerBytes < 20 || headerBytes > kMaxHeaderBytes ||
        headerBytes > static_cast<uint64_t>(st.st_size))
        return makeError(ErrorCode::Format, name, ": header length ", headerBytes,
                         " is impossible");
    std::vector<std::byte> header(headerBytes);
    FOLIO_TRY(readAll(fd, 0, header.data(), headerBytes, name));
    uint32_t storedCrc = 0;
    std::memcpy(&storedCrc, header.data() + headerBytes - 4, 4);
    if (inference::crc32c(0, std::span(header).first(headerBytes - 4)) != storedCrc)
        return makeError(ErrorCode::Format, name,
                         ": header checksum mismatch (the file is damaged)");

    const std::span<const std::byte> body =
        std::span<const std::byte>(header).first(headerBytes - 4);
    HeaderReader r(body);
    std::byte skip[16];
    for (auto& b : skip)
        r.value(b);
    SnapshotHeader h;
    uint32_t count = 0;
    if (!r.str(h.identity.modelId) || !r.str(h.identity.tokenizerId) || !r.str(h.prefixKey) ||
        !r.str(h.parentKey) || !r.value(h.tokenBegin) || !r.value(h.tokenEnd) ||
        !r.value(h.tokensOffset) || !r.value(h.tokensCrc) || !r.value(count))
        return makeError(ErrorCode::Format, name, ": header is truncated");
    if (h.tokenBegin < 0 || h.tokenEnd < h.tokenBegin || count > kMaxTensors)
        return makeError(ErrorCode::Format, name, ": token range or tensor count is impossible");
    const auto fileSize = static_cast<uint64_t>(st.st_size);
    const uint64_t tokenBytes = static_cast<uint64_t>(h.tokenEnd - h.tokenBegin) * 4;
    if (h.tokensOffset < headerBytes || h.tokensOffset > fileSize ||
        tokenBytes > fileSize - h.tokensOffset)
        return makeError(ErrorCode::Format, name, ": token section lies outside the file");
    uint64_t end = h.tokensOffset + tokenBytes;
    for (uint32_t i = 0; i < count; ++i) {
        SnapshotTensorEntry t;
        uint8_t rank = 0;
        if (!r.str(t.name) || !r.value(rank) || rank == 0 || rank > 4)
            return makeError(ErrorCode::Format, name, ": tensor ", i, " is malformed");
        uint64_t elements = 1;
        for (uint8_t d = 0; d < rank; ++d) {
            int64_t dim = 0;
            if (!r.value(dim) || dim < 0 || dim > (int64_t{1} << 40))
                return makeError(ErrorCode::Format, name, ": tensor ", t.name, " has a bad shape");
            t.shape.push_back(dim);
            elements *= static_cast<uint64_t>(dim);
            if (elements > (uint64_t{1} << 40))
                return makeError(ErrorCode::Format, name, ": tensor ", t.name, " is too large");
        }
        if (!r.value(t.offset) || !r.value(t.bytes) || !r.value(t.crc))
            return makeError(ErrorCode::Format, name, ": tensor ", t.name, " is truncated");
        if (t.bytes != elements * 4 || t.offset < headerBytes || t.offset > fileSize ||
            t.bytes > fileSize - t.offset)
            return makeError(ErrorCode::Format, name, ": tensor ", t.name,
                             " lies outside the file or disagrees with its shape");
        end = std::max(end, t.offset + t.bytes);
        h.tensors.push_back(std::move(t));
    }
    if (r.position() != headerBytes - 4)
        return makeError(ErrorCode::Format, name, ": header has trailing bytes");
    h.fileSize = end;
    if (fileSize != end)
        return makeError(ErrorCode::Format, name, " is ", fileSize, " bytes, its header says ", end,
                         " (truncated or padded)");
    return h;
}

bool isMla(const std::string& name) {
    return name.rfind("mla.", 0) == 0;
}

}  // namespace

Result<uint64_t> writeSnapshotFile(const std::filesystem::path& path,
                                   const SnapshotContent& content) {
    if (content.tensors == nullptr)
        return makeError(ErrorCode::InvalidArgument, "a snapshot needs its tensors");
    const std::vector<inference::StateTensor>& tensors = *content.tensors;
    const int64_t tokenEnd = content.tokenBegin + static_cast<int64_t>(content.tokens.size());

    // Layout first: the header's size does not depend on the offsets' values.
    HeaderWriter probe;
    probe.str(content.identity.modelId);
    probe.str(content.identity.tokenizerId);
    probe.str(content.prefixKey);
    probe.str(content.parentKey);
    uint64_t headerBytes = 16 + probe.bytes.size() + 8 + 8 + 8 + 4 + 4 + 4;
    for (const auto& t : tensors)
        headerBytes += 2 + t.name.size() + 1 + 8 * t.shape.size() + 8 + 8 + 4;
    if (headerBytes > kMaxHeaderBytes || tensors.size() > kMaxTensors)
        return makeError(ErrorCode::InvalidArgument, "snapshot header too large");

    uint64_t offset = alignUp(headerBytes);
    const uint64_t tokensOffset = offset;
    offset = alignUp(offset + content.tokens.size_bytes());
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors) {
        offsets.push_back(offset);
        offset = alignUp(offset + t.data.size() * 4);
    }

    HeaderWriter w;
    w.bytes.insert(w.bytes.end(), reinterpret_cast<const std::byte*>(kMagic),
                   reinterpret_cast<const std::byte*>(kMagic) + 8);
    w.value<uint32_t>(kSnapshotFormatVersion);
    w.value<uint32_t>(static_cast<uint32_t>(headerBytes));
    w.str(content.identity.modelId);
    w.str(content.identity.tokenizerId);
    w.str(content.prefixKey);
    w.str(content.parentKey);
    w.value<int64_t>(content.tokenBegin);
    w.value<int64_t>(tokenEnd);
    w.value<uint64_t>(tokensOffset);
    w.value<uint32_t>(inference::crc32c(0, std::as_bytes(content.tokens)));
    w.value<uint32_t>(static_cast<uint32_t>(tensors.size()));
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        if (t.name.empty() || t.shape.empty() || t.shape.size() > 4)
            return makeError(ErrorCode::InvalidArgument, "state tensor \"", t.name,
                             "\" cannot be stored");
        w.str(t.name);
        w.value<uint8_t>(static_cast<uint8_t>(t.shape.size()));
        for (int64_t d : t.shape)
            w.value<int64_t>(d);
        w.value<uint64_t>(offsets[i]);
        w.value<uint64_t>(t.data.size() * 4);
        w.value<uint32_t>(inference::crc32c(0, asBytes(t.data.data(), t.data.size() * 4)));
    }
    w.value<uint32_t>(inference::crc32c(0, w.bytes));
    if (w.bytes.size() != headerBytes)
        return makeError(ErrorCode::InvalidArgument, "snapshot header size mismatch");

    const std::filesystem::path dir = path.parent_path();
    const std::filesystem::path temp =
        dir / cat(".", path.filename().string(), ".tmp.", ::getpid());
    const std::string what = cat("snapshot ", temp.string());
    Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0)
        return makeError(ErrorCode::Io, "cannot create ", temp.string(), ": ", errnoText(errno));
    auto fail = [&](Error error) -> Error {
        ::unlink(temp.c_str());
        return error;
    };
    std::vector<std::byte> pad(kAlign);
    uint64_t written = 0;
    auto emit = [&](std::span<const std::byte> bytes, uint64_t at) -> Status {
        if (at > written)
            FOLIO_TRY(
                writeAll(fd.get(), std::span(pad).first(static_cast<size_t>(at - written)), what));
        FOLIO_TRY(writeAll(fd.get(), bytes, what));
        written = at + bytes.size();
        return {};
    };
    if (auto s = emit(w.bytes, 0); !s)
        return fail(s.error());
    if (auto s = emit(std::as_bytes(content.tokens), tokensOffset); !s)
        return fail(s.error());
    for (size_t i = 0; i < tensors.size(); ++i)
        if (auto s = emit(asBytes(tensors[i].data.data(), tensors[i].data.size() * 4), offsets[i]);
            !s)
            return fail(s.error());
    if (::fsync(fd.get()) != 0)
        return fail(makeError(ErrorCode::Io, "cannot flush ", what, ": ", errnoText(errno)));
    if (::close(fd.release()) != 0)
        return fail(makeError(ErrorCode::Io, "cannot close ", what, ": ", errnoText(errno)));
    if (::rename(temp.c_str(), path.c_str()) != 0)
        return fail(makeError(ErrorCode::Io, "cannot rename ", temp.string(), " to ", path.string(),
                              ": ", errnoText(errno)));
    FOLIO_TRY(fsyncDirectory(dir));
    return written;
}

Result<SnapshotHeader> readSnapshotHeader(const std::filesystem::path& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
        return makeError(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Io, "cannot open ",
                         path.string(), ": ", errnoText(errno));
    return parseHeader(fd.get(), path.string());
}

Result<RestoredState> readSnapshotChain(std::span<const std::filesystem::path> files,
                                        const SnapshotIdentity& expected, int* badLink) {
    auto blame = [&](int link, Error error) -> Error {
        if (badLink != nullptr)
            *badLink = link;
        return error;
    };
    if (files.empty())
        return blame(-1, makeError(ErrorCode::InvalidArgument, "an empty snapshot chain"));

    std::vector<std::unique_ptr<Fd>> fds;
    std::vector<SnapshotHeader> headers;
    for (size_t i = 0; i < files.size(); ++i) {
        const int link = static_cast<int>(i);
        const std::string name = files[i].string();
        auto fd = std::make_unique<Fd>(::open(files[i].c_str(), O_RDONLY | O_CLOEXEC));
        if (fd->get() < 0)
            return blame(link, makeError(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Io,
                                         "cannot open ", name, ": ", errnoText(errno)));
        ::posix_fadvise(fd->get(), 0, 0, POSIX_FADV_SEQUENTIAL);
        auto header = parseHeader(fd->get(), name);
        if (!header)
            return blame(link, header.error());
        const SnapshotHeader& h = *header;
        if (h.identity.modelId != expected.modelId ||
            h.identity.tokenizerId != expected.tokenizerId)
            return blame(link, makeError(ErrorCode::Format, name,
                                         " was made with a different model or tokenizer"));
        if (i == 0 ? (!h.parentKey.empty() || h.tokenBegin != 0)
                   : (h.parentKey != headers.back().prefixKey ||
                      h.tokenBegin != headers.back().tokenEnd))
            return blame(link, makeError(ErrorCode::Format, name,
                                         " does not continue the snapshot before it"));
        fds.push_back(std::move(fd));
        headers.push_back(std::move(header).value());
    }

    // The complete state's layout: the last link's tensors, MLA caches with every row.
    const SnapshotHeader& last = headers.back();
    RestoredState state;
    state.tokens.resize(static_cast<size_t>(last.tokenEnd));
    for (const SnapshotTensorEntry& t : last.tensors) {
        inference::StateTensor out;
        out.name = t.name;
        out.shape = t.shape;
        if (isMla(t.name)) {
            if (t.shape.size() != 2)
                return blame(static_cast<int>(files.size()) - 1,
                             makeError(ErrorCode::Format, files.back().string(), ": tensor ",
                                       t.name, " is not a row table"));
            out.shape[0] = last.tokenEnd;
        }
        uint64_t elements = 1;
        for (int64_t d : out.shape)
            elements *= static_cast<uint64_t>(d);
        out.data.resize(static_cast<size_t>(elements));
        state.tensors.push_back(std::move(out));
    }

    for (size_t i = 0; i < headers.size(); ++i) {
        const int link = static_cast<int>(i);
        const SnapshotHeader& h = headers[i];
        const std::string name = files[i].string();
        const int fd = fds[i]->get();
        const uint64_t rows = static_cast<uint64_t>(h.tokenEnd - h.tokenBegin);
        if (auto s = readChecked(fd, h.tokensOffset,
                                 reinterpret_cast<std::byte*>(state.tokens.data() + h.tokenBegin),
                                 rows * 4, h.tokensCrc, name + " (token ids)");
            !s)
            return blame(link, s.error());
        state.bytesRead += rows * 4;
        const bool isLast = i + 1 == headers.size();
        size_t mlaSeen = 0;
        for (const SnapshotTensorEntry& t : h.tensors) {
            if (!isLast && !isMla(t.name))
                continue;  // an ancestor's KDA state is superseded by the last link's
            auto target = std::find_if(state.tensors.begin(), state.tensors.end(),
                                       [&](const auto& s) { return s.name == t.name; });
            if (target == state.tensors.end())
                return blame(link, makeError(ErrorCode::Format, name, ": tensor ", t.name,
                                             " is not in the chain's last snapshot"));
            std::byte* dest = reinterpret_cast<std::byte*>(target->data.data());
            if (isMla(t.name)) {
                ++mlaSeen;
                if (t.shape.size() != 2 || t.shape[1] != target->shape[1] ||
                    t.shape[0] != static_cast<int64_t>(rows))
                    return blame(link,
                                 makeError(ErrorCode::Format, name, ": tensor ", t.name, " has ",
                                           t.shape[0], " rows for a range of ", rows, " tokens"));
                dest += static_cast<uint64_t>(h.tokenBegin) * static_cast<uint64_t>(t.shape[1]) * 4;
            }
            if (auto s = readChecked(fd, t.offset, dest, t.bytes, t.crc,
                                     cat(name, " (tensor ", t.name, ")"));
                !s)
                return blame(link, s.error());
            state.bytesRead += t.bytes;
        }
        const size_t mlaExpected =
            static_cast<size_t>(std::count_if(state.tensors.begin(), state.tensors.end(),
                                              [](const auto& s) { return isMla(s.name); }));
        if (mlaSeen != mlaExpected)
            return blame(link, makeError(ErrorCode::Format, name, " has ", mlaSeen,
                                         " MLA caches, the chain ", mlaExpected));
    }
    return state;
}

}  // namespace folio::storage
