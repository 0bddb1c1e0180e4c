// SPDX-License-Identifier: GPL-3.0-or-later
#include "safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "json.h"

namespace folio::inference {
namespace {

struct DTypeEntry {
    const char* name;
    DType dtype;
    size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {"F64", DType::F64, 8},   {"F32", DType::F32, 4}, {"F16", DType::F16, 2},
    {"BF16", DType::BF16, 2}, {"I64", DType::I64, 8}, {"I32", DType::I32, 4},
    {"I16", DType::I16, 2},   {"I8", DType::I8, 1},   {"U8", DType::U8, 1},
    {"BOOL", DType::Bool, 1},
};

bool parseDType(std::string_view name, DType& out) {
    for (const auto& entry : kDTypes) {
        if (name == entry.name) {
            out = entry.dtype;
            return true;
        }
    }
    return false;
}

uint64_t readLittleEndian64(const std::byte* p) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i)
        value = (value << 8) | static_cast<uint64_t>(p[i]);
    return value;
}

// Multiplies without overflow; false when the product exceeds `limit`.
bool checkedMultiply(uint64_t a, uint64_t b, uint64_t limit, uint64_t& out) {
    if (a != 0 && b > limit / a)
        return false;
    out = a * b;
    return out <= limit;
}

Error headerError(std::string_view what) {
    return makeError(ErrorCode::Format, "invalid safetensors header: ", what);
}

Result<TensorInfo> parseTensorEntry(const std::string& name, const JsonValue& entry,
                                    uint64_t dataSize) {
    auto tensorError = [&](std::string_view what) {
        return headerError(cat("tensor \"", name, "\": ", what));
    };
    if (!entry.isObject())
        return tensorError("entry is not an object");
    TensorInfo info;
    info.name = name;
    for (const auto& [key, value] : entry.members()) {
        if (key != "dtype" && key != "shape" && key != "data_offsets")
            return tensorError(cat("unknown field \"", key, "\""));
        (void)value;
    }
    const JsonValue* dtype = entry.find("dtype");
    if (dtype == nullptr || !dtype->isString())
        return tensorError("missing or non-string \"dtype\"");
    if (!parseDType(dtype->string(), info.dtype))
        return tensorError(cat("unknown dtype \"", dtype->string(), "\""));

    const JsonValue* shape = entry.find("shape");
    if (shape == nullptr || !shape->isArray())
        return tensorError("missing or non-array \"shape\"");
    if (shape->items().size() > 16)
        return tensorError("more than 16 dimensions");
    for (const JsonValue& dim : shape->items()) {
        auto value = dim.integer();
        if (!value || *value < 0)
            return tensorError("shape holds a value that is not a non-negative integer");
        info.shape.push_back(*value);
    }
    // The element count only has to fit in 64 bits here; the byte size is compared with
    // data_offsets below, which are bounded by the data area.
    constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();
    uint64_t elements = 1;
    if (std::find(info.shape.begin(), info.shape.end(), 0) != info.shape.end()) {
        elements = 0;
    } else {
        for (int64_t d : info.shape) {
            if (!checkedMultiply(elements, static_cast<uint64_t>(d), kNoLimit, elements))
                return tensorError(cat("shape ", shapeToString(info.shape),
                                       " has too many elements to count in 64 bits"));
        }
    }

    const JsonValue* offsets = entry.find("data_offsets");
    if (offsets == nullptr || !offsets->isArray() || offsets->items().size() != 2)
        return tensorError("\"data_offsets\" must be an array of two integers");
    auto begin = offsets->items()[0].integer();
    auto end = offsets->items()[1].integer();
    if (!begin || !end || *begin < 0 || *end < 0)
        return tensorError("\"data_offsets\" must be non-negative integers");
    info.begin = static_cast<uint64_t>(*begin);
    info.end = static_cast<uint64_t>(*end);
    if (info.begin > info.end)
        return tensorError(cat("data_offsets [", info.begin, ", ", info.end, "] are reversed"));
    if (info.end > dataSize)
        return tensorError(cat("data_offsets [", info.begin, ", ", info.end,
                               "] extend past the data area of ", dataSize, " bytes"));
    uint64_t expectedBytes = 0;
    const bool fits = checkedMultiply(elements, dtypeSize(info.dtype), kNoLimit, expectedBytes);
    if (!fits || expectedBytes != info.end - info.begin)
        return tensorError(cat("shape ", shapeToString(info.shape), " of ", dtypeName(info.dtype),
                               " needs ", fits ? std::to_string(expectedBytes) : "over 2^64",
                               " bytes but data_offsets give ", info.end - info.begin));
    return info;
}

}  // namespace

size_t dtypeSize(DType dtype) {
    for (const auto& entry : kDTypes) {
        if (entry.dtype == dtype)
            return entry.size;
    }
    return 0;
}

const char* dtypeName(DType dtype) {
    for (const auto& entry : kDTypes) {
        if (entry.dtype == dtype)
            return entry.name;
    }
    return "?";
}

bool isFloatingWeightType(DType dtype) {
    return dtype == DType::BF16 || dtype == DType::F16 || dtype == DType::F32;
}

uint64_t TensorInfo::elementCount() const {
    uint64_t n = 1;
    for (int64_t d : shape)
        n *= static_cast<uint64_t>(d);
    return n;
}

std::string shapeToString(std::span<const int64_t> shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i > 0)
            out += ", ";
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

std::string TensorView::shapeString() const {
    return shapeToString(shape);
}

Result<SafetensorsHeader> parseSafetensorsHeader(std::span<const std::byte> file) {
    if (file.size() < 8)
        return headerError(
            cat("the file has ", file.size(), " bytes, fewer than the 8-byte header length"));
    uint64_t headerBytes = readLittleEndian64(file.data());
    if (headerBytes > kMaxSafetensorsHeaderBytes)
        return headerError(cat("header length ", headerBytes, " exceeds the limit of ",
                               kMaxSafetensorsHeaderBytes, " bytes"));
    if (headerBytes > file.size() - 8)
        return headerError(cat("header length ", headerBytes, " runs past the end of the file (",
                               file.size(), " bytes)"));
    if (headerBytes < 2)
        return headerError("header is shorter than an empty JSON object");
    std::string_view text(reinterpret_cast<const char*>(file.data() + 8),
                          static_cast<size_t>(headerBytes));
    if (text.front() != '{')
        return headerError("header does not start with '{'");
    // Writers pad the header with trailing spaces to align the data area.
    auto parsed = parseJson(text, JsonLimits{.maxDepth = 8});
    if (!parsed)
        return headerError(parsed.error().message);
    const JsonValue& root = parsed.value();
    if (!root.isObject())
        return headerError("header is not a JSON object");

    SafetensorsHeader header;
    header.dataOffset = 8 + headerBytes;
    header.dataSize = file.size() - header.dataOffset;
    header.tensors.reserve(root.members().size());
    for (const auto& [name, entry] : root.members()) {
        if (name == "__metadata__") {
            if (!entry.isObject())
                return headerError("\"__metadata__\" is not an object");
            for (const auto& [key, value] : entry.members()) {
                if (!value.isString())
                    return headerError(cat("metadata \"", key, "\" is not a string"));
                header.metadata[key] = value.string();
            }
            continue;
        }
        if (name.empty())
            return headerError("a tensor has an empty name");
        FOLIO_ASSIGN_OR_RETURN(TensorInfo info, parseTensorEntry(name, entry, header.dataSize));
        header.tensors.push_back(std::move(info));
    }

    // Ranges must tile the data area exactly: no overlaps, no holes, nothing left over.
    std::vector<const TensorInfo*> byOffset;
    byOffset.reserve(header.tensors.size());
    for (const auto& t : header.tensors)
        byOffset.push_back(&t);
    std::sort(byOffset.begin(), byOffset.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t cursor = 0;
    const TensorInfo* previous = nullptr;
    for (const TensorInfo* t : byOffset) {
        if (t->begin < cursor)
            return headerError(cat("tensor \"", t->name, "\" at bytes [", t->begin, ", ", t->end,
                                   ") overlaps tensor \"", previous->name, "\" at [",
                                   previous->begin, ", ", previous->end, ")"));
        if (t->begin > cursor)
            return headerError(cat("bytes [", cursor, ", ", t->begin,
                                   ") of the data area belong to no tensor (before \"", t->name,
                                   "\")"));
        cursor = t->end;
        previous = t;
    }
    if (cursor != header.dataSize)
        return headerError(
            cat("the data area has ", header.dataSize, " bytes but the tensors cover ", cursor));
    return header;
}

float bf16ToFloat(uint16_t bits) {
    return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t floatToBf16(float value) {
    uint32_t bits = std::bit_cast<uint32_t>(value);
    if (std::isnan(value))
        return static_cast<uint16_t>((bits >> 16) | 0x40);
    uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
    return static_cast<uint16_t>((bits + rounding) >> 16);
}

float halfToFloat(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1F;
    uint32_t mantissa = h & 0x3FF;
    uint32_t bits = 0;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int shift = 0;
            while ((mantissa & 0x400) == 0) {
                mantissa <<= 1;
                ++shift;
            }
            mantissa &= 0x3FF;
            bits = sign | (static_cast<uint32_t>(127 - 15 - shift + 1) << 23) | (mantissa << 13);
        }
    } else if (exponent == 0x1F) {
        bits = sign | 0x7F800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    return std::bit_cast<float>(bits);
}

void convertToFloat(const TensorView& tensor, uint64_t first, uint64_t count, float* out) {
    const std::byte* base = tensor.data;
    switch (tensor.dtype) {
        case DType::F32:
            std::memcpy(out, base + first * 4, count * 4);
            return;
        case DType::BF16:
            for (uint64_t i = 0; i < count; ++i) {
                uint16_t bits;
                std::memcpy(&bits, base + (first + i) * 2, 2);
                out[i] = bf16ToFloat(bits);
            }
            return;
        case DType::F16:
            for (uint64_t i = 0; i < count; ++i) {
                uint16_t bits;
                std::memcpy(&bits, base + (first + i) * 2, 2);
                out[i] = halfToFloat(bits);
            }
            return;
        default:
            // Callers bind only floating weight types (checked when weights are bound).
            std::fill(out, out + count, std::numeric_limits<float>::quiet_NaN());
            return;
    }
}

std::vector<float> toFloatVector(const TensorView& tensor) {
    std::vector<float> out(tensor.elements);
    convertToFloat(tensor, 0, tensor.elements, out.data());
    return out;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
    SafetensorsFile result;
    result.path_ = path;
    FOLIO_ASSIGN_OR_RETURN(result.file_, MappedFile::open(path));
    auto header = parseSafetensorsHeader(result.file_.bytes());
    if (!header)
        return header.error().withContext(path.string());
    result.header_ = std::move(header).value();
    for (size_t i = 0; i < result.header_.tensors.size(); ++i)
        result.index_.emplace(result.header_.tensors[i].name, i);
    return result;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView SafetensorsFile::view(const TensorInfo& info) const {
    TensorView v;
    v.name = info.name;
    v.dtype = info.dtype;
    v.shape = info.shape;
    v.data = file_.data() + header_.dataOffset + info.begin;
    v.elements = info.elementCount();
    return v;
}

namespace {

Status writeAll(int fd, const void* data, size_t size, const std::filesystem::path& path) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t written = ::write(fd, p, size);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return makeError(ErrorCode::Io, "cannot write ", path.string(), ": ",
                             std::strerror(errno));
        }
        p += written;
        size -= static_cast<size_t>(written);
    }
    return {};
}

}  // namespace

Status writeSafetensors(const std::filesystem::path& path, std::span<const TensorRecord> tensors,
                        const std::map<std::string, std::string>& metadata) {
    std::string header = "{";
    bool first = true;
    if (!metadata.empty()) {
        header += "\"__metadata__\":{";
        for (auto it = metadata.begin(); it != metadata.end(); ++it) {
            if (it != metadata.begin())
                header += ",";
            header += "\"" + jsonEscape(it->first) + "\":\"" + jsonEscape(it->second) + "\"";
        }
        header += "}";
        first = false;
    }
    uint64_t offset = 0;
    for (const TensorRecord& t : tensors) {
        uint64_t elements = 1;
        for (int64_t d : t.shape)
            elements *= static_cast<uint64_t>(d);
        uint64_t bytes = elements * dtypeSize(t.dtype);
        if (!t.data.empty() && t.data.size() != bytes)
            return makeError(ErrorCode::InvalidArgument, "tensor ", t.name, " has ", t.data.size(),
                             " bytes of data, its shape needs ", bytes);
        if (!first)
            header += ",";
        first = false;
        header += "\"" + jsonEscape(t.name) + "\":{\"dtype\":\"" + dtypeName(t.dtype) +
                  "\",\"shape\":" + shapeToString(t.shape) + ",\"data_offsets\":[" +
                  std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
        offset += bytes;
    }
    header += "}";
    while ((8 + header.size()) % 8 != 0)
        header += ' ';

    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return makeError(ErrorCode::Io, "cannot create ", path.string(), ": ",
                         std::strerror(errno));
    uint8_t lengthBytes[8];
    uint64_t length = header.size();
    for (int i = 0; i < 8; ++i)
        lengthBytes[i] = static_cast<uint8_t>(length >> (8 * i));
    Status status = writeAll(fd, lengthBytes, 8, path);
    if (status.ok())
        status = writeAll(fd, header.data(), header.size(), path);
    const off_t dataStart = static_cast<off_t>(8 + header.size());
    off_t position = dataStart;
    for (const TensorRecord& t : tensors) {
        if (!status.ok())
            break;
        uint64_t elements = 1;
        for (int64_t d : t.shape)
            elements *= static_cast<uint64_t>(d);
        off_t bytes = static_cast<off_t>(elements * dtypeSize(t.dtype));
        if (t.data.empty()) {
            position += bytes;
            if (::lseek(fd, position, SEEK_SET) < 0)
                status = makeError(ErrorCode::Io, "cannot seek in ", path.string());
        } else {
            status = writeAll(fd, t.data.data(), t.data.size(), path);
            position += bytes;
        }
    }
    if (status.ok() && ::ftruncate(fd, position) != 0)
        status =
            makeError(ErrorCode::Io, "cannot size ", path.string(), ": ", std::strerror(errno));
    if (::close(fd) != 0 && status.ok())
        status =
            makeError(ErrorCode::Io, "cannot close ", path.string(), ": ", std::strerror(errno));
    return status;
}

}  // namespace folio::inference
