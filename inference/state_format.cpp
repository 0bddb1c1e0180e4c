// SPDX-License-Identifier: GPL-3.0-or-later
#include "state_format.h"

#include <cstring>
#include <string_view>

#include "checksum.h"

namespace folio::inference {
namespace {

constexpr char kMagic[8] = {'F', 'O', 'L', 'I', 'O', 'S', 'E', 'Q'};
constexpr size_t kMaxRank = 4;
constexpr size_t kMaxTensors = 1 << 16;

class Writer {
  public:
    void bytes(const void* data, size_t n) {
        const auto* p = static_cast<const std::byte*>(data);
        out.insert(out.end(), p, p + n);
    }
    template <typename T>
    void value(T v) {
        bytes(&v, sizeof v);  // the format is little-endian, as every supported host is
    }
    std::vector<std::byte> out;
};

class Reader {
  public:
    explicit Reader(std::span<const std::byte> data) : data_(data) {}
    size_t remaining() const { return data_.size() - pos_; }
    bool bytes(void* out, size_t n) {
        if (n > remaining())
            return false;
        std::memcpy(out, data_.data() + pos_, n);
        pos_ += n;
        return true;
    }
    template <typename T>
    bool value(T& v) {
        return bytes(&v, sizeof v);
    }

  private:
    std::span<const std::byte> data_;
    size_t pos_ = 0;
};

Error corrupt(std::string_view what) {
    return makeError(ErrorCode::Format, "sequence state is corrupt: ", what);
}

}  // namespace

std::vector<std::byte> encodeState(uint64_t fingerprint, std::span<const int32_t> tokens,
                                   const std::vector<StateTensor>& tensors) {
    Writer w;
    w.bytes(kMagic, sizeof kMagic);
    w.value<uint32_t>(kStateFormatVersion);
    w.value<uint32_t>(0);
    w.value<uint64_t>(fingerprint);
    w.value<uint64_t>(tokens.size());
    w.value<uint32_t>(static_cast<uint32_t>(tensors.size()));
    w.bytes(tokens.data(), tokens.size_bytes());
    for (const StateTensor& t : tensors) {
        w.value<uint16_t>(static_cast<uint16_t>(t.name.size()));
        w.bytes(t.name.data(), t.name.size());
        w.value<uint8_t>(static_cast<uint8_t>(t.shape.size()));
        for (int64_t d : t.shape)
            w.value<int64_t>(d);
        w.bytes(t.data.data(), t.data.size() * sizeof(float));
    }
    w.value<uint32_t>(crc32c(0, w.out));
    return std::move(w.out);
}

Result<DecodedState> decodeState(std::span<const std::byte> bytes) {
    if (bytes.size() < sizeof kMagic + 4 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        return corrupt("it does not start with the FOLIOSEQ signature");
    uint32_t stored = 0;
    std::memcpy(&stored, bytes.data() + bytes.size() - 4, 4);
    const auto body = bytes.first(bytes.size() - 4);
    if (crc32c(0, body) != stored)
        return corrupt("checksum mismatch (the data was truncated or altered)");

    Reader r(body);
    char magic[8];
    uint32_t version = 0, flags = 0, tensorCount = 0;
    uint64_t tokenCount = 0;
    DecodedState out;
    if (!r.bytes(magic, 8) || !r.value(version) || !r.value(flags) || !r.value(out.fingerprint) ||
        !r.value(tokenCount) || !r.value(tensorCount))
        return corrupt("the header is truncated");
    if (version != kStateFormatVersion)
        return makeError(ErrorCode::Unsupported, "sequence state has format version ", version,
                         "; this build reads version ", kStateFormatVersion);
    if (flags != 0)
        return corrupt("unknown flags are set");
    if (tokenCount > r.remaining() / sizeof(int32_t))
        return corrupt("the token list is longer than the data");
    if (tensorCount > kMaxTensors)
        return corrupt("too many tensors");
    out.tokens.resize(tokenCount);
    r.bytes(out.tokens.data(), tokenCount * sizeof(int32_t));
    for (uint32_t i = 0; i < tensorCount; ++i) {
        StateTensor t;
        uint16_t nameLength = 0;
        uint8_t rank = 0;
        if (!r.value(nameLength) || nameLength > r.remaining())
            return corrupt("a tensor name is truncated");
        t.name.resize(nameLength);
        r.bytes(t.name.data(), nameLength);
        if (!r.value(rank) || rank > kMaxRank)
            return corrupt(cat("tensor ", t.name, " has an invalid rank"));
        uint64_t elements = 1;
        for (uint8_t d = 0; d < rank; ++d) {
            int64_t dim = 0;
            if (!r.value(dim) || dim < 0)
                return corrupt(cat("tensor ", t.name, " has an invalid shape"));
            t.shape.push_back(dim);
            if (dim != 0 && elements > r.remaining() / static_cast<uint64_t>(dim))
                return corrupt(cat("tensor ", t.name, " is larger than the data"));
            elements *= static_cast<uint64_t>(dim);
        }
        if (elements > r.remaining() / sizeof(float))
            return corrupt(cat("tensor ", t.name, " is truncated"));
        t.data.resize(elements);
        r.bytes(t.data.data(), elements * sizeof(float));
        out.tensors.push_back(std::move(t));
    }
    if (r.remaining() != 0)
        return corrupt("unexpected bytes after the last tensor");
    return out;
}

}  // namespace folio::inference
