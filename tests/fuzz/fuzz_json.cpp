// SPDX-License-Identifier: GPL-3.0-or-later
// libFuzzer target for the JSON reader (inference/json.h). Besides "no crash, no UB, no read out
// of bounds" it checks what the reader promises: an error gives a byte offset inside the input;
// an accepted document survives a round trip (write it back out, parse it again: same tree); a
// document accepted under a small depth limit is accepted under the default one.
// Built by tests/fuzz/CMakeLists.txt (clang, FOLIO_FUZZ=ON) and, with the entry point renamed
// through FOLIO_FUZZ_ENTRY, replayed by the CTest suite test_fuzz_replay.
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "inference/json.h"

#ifndef FOLIO_FUZZ_ENTRY
#define FOLIO_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

namespace {

using folio::inference::JsonLimits;
using folio::inference::JsonValue;
using folio::inference::parseJson;

void writeString(const std::string& s, std::string& out) {
    out += '"';
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += c;  // the reader only accepts valid UTF-8, so this stays valid
        }
    }
    out += '"';
}

void write(const JsonValue& v, std::string& out) {
    char buf[40];
    switch (v.type()) {
        case JsonValue::Type::Null:
            out += "null";
            return;
        case JsonValue::Type::Bool:
            out += v.boolean() ? "true" : "false";
            return;
        case JsonValue::Type::Number:
            if (auto i = v.integer())
                std::snprintf(buf, sizeof buf, "%" PRId64, *i);
            else
                std::snprintf(buf, sizeof buf, "%.17g", v.number());
            out += buf;
            return;
        case JsonValue::Type::String:
            writeString(v.string(), out);
            return;
        case JsonValue::Type::Array:
            out += '[';
            for (size_t i = 0; i < v.items().size(); ++i) {
                if (i)
                    out += ',';
                write(v.items()[i], out);
            }
            out += ']';
            return;
        case JsonValue::Type::Object:
            out += '{';
            for (size_t i = 0; i < v.members().size(); ++i) {
                if (i)
                    out += ',';
                writeString(v.members()[i].first, out);
                out += ':';
                write(v.members()[i].second, out);
            }
            out += '}';
            return;
    }
}

bool same(const JsonValue& a, const JsonValue& b) {
    if (a.type() != b.type())
        return false;
    switch (a.type()) {
        case JsonValue::Type::Null:
            return true;
        case JsonValue::Type::Bool:
            return a.boolean() == b.boolean();
        case JsonValue::Type::Number:
            if (a.integer() && b.integer() != a.integer())
                return false;
            return a.number() == b.number();
        case JsonValue::Type::String:
            return a.string() == b.string();
        case JsonValue::Type::Array:
            if (a.items().size() != b.items().size())
                return false;
            for (size_t i = 0; i < a.items().size(); ++i) {
                if (!same(a.items()[i], b.items()[i]))
                    return false;
            }
            return true;
        case JsonValue::Type::Object:
            if (a.members().size() != b.members().size())
                return false;
            for (size_t i = 0; i < a.members().size(); ++i) {
                if (a.members()[i].first != b.members()[i].first ||
                    !same(a.members()[i].second, b.members()[i].second))
                    return false;
                // Keys are unique, so lookup finds this very member.
                if (a.find(a.members()[i].first) != &a.members()[i].second)
                    return false;
            }
            return true;
    }
    return false;
}

void checkError(const folio::Error& error, size_t size) {
    FUZZ_CHECK(error.code == folio::ErrorCode::Format);
    unsigned long long at = 0;
    FUZZ_CHECK(std::sscanf(error.message.c_str(), "invalid JSON at byte %llu:", &at) == 1);
    FUZZ_CHECK(at <= size);
}

}  // namespace

extern "C" int FOLIO_FUZZ_ENTRY(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = parseJson(text);
    if (!parsed.ok()) {
        checkError(parsed.error(), size);
    } else {
        std::string written;
        write(parsed.value(), written);
        auto again = parseJson(written);
        FUZZ_CHECK(again.ok());
        FUZZ_CHECK(same(parsed.value(), again.value()));
    }

    const int depth = size > 0 ? data[0] % 8 : 0;
    auto shallow = parseJson(text, JsonLimits{.maxDepth = depth});
    if (shallow.ok())
        FUZZ_CHECK(parsed.ok() && same(parsed.value(), shallow.value()));
    else
        checkError(shallow.error(), size);
    return 0;
}
