// SPDX-License-Identifier: GPL-3.0-or-later
// A strict, bounded JSON reader for model files (config.json, safetensors headers, shard indexes).
// Owns: the parsed document tree. Promises: accepts exactly RFC 8259 JSON; rejects duplicate
// object keys, nesting deeper than a limit, invalid UTF-8 escapes and trailing garbage, with an
// error that gives the byte offset. Never reads outside the given text; never throws.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "result.h"

namespace folio::inference {

class JsonValue {
  public:
    enum class Type { Null, Bool, Number, String, Array, Object };
    using Member = std::pair<std::string, JsonValue>;

    JsonValue() = default;

    Type type() const { return type_; }
    bool isNull() const { return type_ == Type::Null; }
    bool isBool() const { return type_ == Type::Bool; }
    bool isNumber() const { return type_ == Type::Number; }
    bool isString() const { return type_ == Type::String; }
    bool isArray() const { return type_ == Type::Array; }
    bool isObject() const { return type_ == Type::Object; }

    bool boolean() const { return bool_; }
    double number() const { return number_; }
    // The number as an exact integer, when it was written as one and fits in int64.
    std::optional<int64_t> integer() const;
    const std::string& string() const { return string_; }
    const std::vector<JsonValue>& items() const { return items_; }
    const std::vector<Member>& members() const { return members_; }

    // Object lookup; nullptr when absent or when this is not an object.
    const JsonValue* find(std::string_view key) const;

    static const char* typeName(Type type);

  private:
    friend class JsonParser;
    Type type_ = Type::Null;
    bool bool_ = false;
    bool integral_ = false;
    int64_t integer_ = 0;
    double number_ = 0.0;
    std::string string_;
    std::vector<JsonValue> items_;
    std::vector<Member> members_;
};

struct JsonLimits {
    int maxDepth = 64;
};

Result<JsonValue> parseJson(std::string_view text, JsonLimits limits = {});

// `text` as the inside of a JSON string literal: quote, backslash and control characters
// escaped, everything else (UTF-8 included) as it is.
std::string jsonEscape(std::string_view text);

}  // namespace folio::inference
