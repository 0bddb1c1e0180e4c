// SPDX-License-Identifier: GPL-3.0-or-later
#include "json.h"

#include <charconv>
#include <cstdio>
#include <unordered_set>

namespace folio::inference {

std::optional<int64_t> JsonValue::integer() const {
    if (type_ != Type::Number || !integral_)
        return std::nullopt;
    return integer_;
}

const JsonValue* JsonValue::find(std::string_view key) const {
    if (type_ != Type::Object)
        return nullptr;
    for (const auto& [name, value] : members_) {
        if (name == key)
            return &value;
    }
    return nullptr;
}

const char* JsonValue::typeName(Type type) {
    switch (type) {
        case Type::Null:
            return "null";
        case Type::Bool:
            return "a boolean";
        case Type::Number:
            return "a number";
        case Type::String:
            return "a string";
        case Type::Array:
            return "an array";
        case Type::Object:
            return "an object";
    }
    return "?";
}

class JsonParser {
  public:
    JsonParser(std::string_view text, JsonLimits limits) : text_(text), limits_(limits) {}

    Result<JsonValue> parseDocument() {
        JsonValue root;
        FOLIO_TRY(parseValue(root, 0));
        skipWhitespace();
        if (pos_ != text_.size())
            return fail("unexpected content after the JSON value");
        return root;
    }

  private:
    Error fail(std::string_view what) const {
        return makeError(ErrorCode::Format, "invalid JSON at byte ", pos_, ": ", what);
    }

    void skipWhitespace() {
        while (pos_ < text_.size()) {
            char c = text_[pos_];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
                break;
            ++pos_;
        }
    }

    bool consumeLiteral(std::string_view literal) {
        if (text_.substr(pos_, literal.size()) != literal)
            return false;
        pos_ += literal.size();
        return true;
    }

    Status parseValue(JsonValue& out, int depth) {
        if (depth > limits_.maxDepth)
            return fail("nesting is deeper than the limit");
        skipWhitespace();
        if (pos_ >= text_.size())
            return fail("unexpected end of input");
        char c = text_[pos_];
        switch (c) {
            case '{':
                return parseObject(out, depth);
            case '[':
                return parseArray(out, depth);
            case '"':
                out.type_ = JsonValue::Type::String;
                return parseString(out.string_);
            case 't':
                if (!consumeLiteral("true"))
                    return fail("invalid literal");
                out.type_ = JsonValue::Type::Bool;
                out.bool_ = true;
                return {};
            case 'f':
                if (!consumeLiteral("false"))
                    return fail("invalid literal");
                out.type_ = JsonValue::Type::Bool;
                out.bool_ = false;
                return {};
            case 'n':
                if (!consumeLiteral("null"))
                    return fail("invalid literal");
                out.type_ = JsonValue::Type::Null;
                return {};
            default:
                if (c == '-' || (c >= '0' && c <= '9'))
                    return parseNumber(out);
                return fail("unexpected character");
        }
    }

    Status parseObject(JsonValue& out, int depth) {
        out.type_ = JsonValue::Type::Object;
        ++pos_;  // '{'
        skipWhitespace();
        if (pos_ < text_.size() && text_[pos_] == '}') {
            ++pos_;
            return {};
        }
        std::unordered_set<std::string> seen;
        while (true) {
            skipWhitespace();
            if (pos_ >= text_.size() || text_[pos_] != '"')
                return fail("expected a string key");
            std::string key;
            FOLIO_TRY(parseString(key));
            if (!seen.insert(key).second)
                return fail(cat("duplicate key \"", key, "\""));
            skipWhitespace();
            if (pos_ >= text_.size() || text_[pos_] != ':')
                return fail("expected ':'");
            ++pos_;
            JsonValue value;
            FOLIO_TRY(parseValue(value, depth + 1));
            out.members_.emplace_back(std::move(key), std::move(value));
            skipWhitespace();
            if (pos_ >= text_.size())
                return fail("unterminated object");
            if (text_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (text_[pos_] == '}') {
                ++pos_;
                return {};
            }
            return fail("expected ',' or '}'");
        }
    }

    Status parseArray(JsonValue& out, int depth) {
        out.type_ = JsonValue::Type::Array;
        ++pos_;  // '['
        skipWhitespace();
        if (pos_ < text_.size() && text_[pos_] == ']') {
            ++pos_;
            return {};
        }
        while (true) {
            JsonValue value;
            FOLIO_TRY(parseValue(value, depth + 1));
            out.items_.push_back(std::move(value));
            skipWhitespace();
            if (pos_ >= text_.size())
                return fail("unterminated array");
            if (text_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (text_[pos_] == ']') {
                ++pos_;
                return {};
            }
            return fail("expected ',' or ']'");
        }
    }

    static void appendUtf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    Result<uint32_t> parseHex4() {
        if (text_.size() - pos_ < 4)
            return fail("truncated \\u escape");
        uint32_t value = 0;
        for (int i = 0; i < 4; ++i) {
            char c = text_[pos_++];
            value <<= 4;
            if (c >= '0' && c <= '9')
                value |= static_cast<uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                value |= static_cast<uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                value |= static_cast<uint32_t>(c - 'A' + 10);
            else
                return fail("invalid hex digit in \\u escape");
        }
        return value;
    }

    // Validates one UTF-8 sequence starting at pos_ and copies it.
    Status copyUtf8(std::string& out) {
        auto byte = [&](size_t i) { return static_cast<unsigned char>(text_[i]); };
        unsigned char lead = byte(pos_);
        int length = 0;
        uint32_t cp = 0;
        if (lead < 0x80) {
            length = 1;
            cp = lead;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2;
            cp = lead & 0x1F;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            cp = lead & 0x0F;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            cp = lead & 0x07;
        } else {
            return fail("invalid UTF-8 in string");
        }
        if (text_.size() - pos_ < static_cast<size_t>(length))
            return fail("truncated UTF-8 in string");
        for (int i = 1; i < length; ++i) {
            unsigned char b = byte(pos_ + static_cast<size_t>(i));
            if ((b & 0xC0) != 0x80)
                return fail("invalid UTF-8 in string");
            cp = (cp << 6) | (b & 0x3F);
        }
        static constexpr uint32_t kMinimum[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMinimum[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail("invalid UTF-8 in string");
        out.append(text_.substr(pos_, static_cast<size_t>(length)));
        pos_ += static_cast<size_t>(length);
        return {};
    }

    Status parseString(std::string& out) {
        ++pos_;  // opening quote
        while (true) {
            if (pos_ >= text_.size())
                return fail("unterminated string");
            char c = text_[pos_];
            if (c == '"') {
                ++pos_;
                return {};
            }
            if (static_cast<unsigned char>(c) < 0x20)
                return fail("control character in string");
            if (c != '\\') {
                FOLIO_TRY(copyUtf8(out));
                continue;
            }
            ++pos_;
            if (pos_ >= text_.size())
                return fail("unterminated escape");
            char e = text_[pos_++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    FOLIO_ASSIGN_OR_RETURN(uint32_t cp, parseHex4());
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (!consumeLiteral("\\u"))
                            return fail("unpaired surrogate in \\u escape");
                        FOLIO_ASSIGN_OR_RETURN(uint32_t low, parseHex4());
                        if (low < 0xDC00 || low > 0xDFFF)
                            return fail("unpaired surrogate in \\u escape");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        return fail("unpaired surrogate in \\u escape");
                    }
                    appendUtf8(out, cp);
                    break;
                }
                default:
                    return fail("invalid escape");
            }
        }
    }

    Status parseNumber(JsonValue& out) {
        size_t start = pos_;
        auto digit = [&](size_t i) {
            return i < text_.size() && text_[i] >= '0' && text_[i] <= '9';
        };
        if (text_[pos_] == '-')
            ++pos_;
        if (!digit(pos_))
            return fail("invalid number");
        if (text_[pos_] == '0') {
            ++pos_;
            if (digit(pos_))
                return fail("leading zero in number");
        } else {
            while (digit(pos_))
                ++pos_;
        }
        bool integral = true;
        if (pos_ < text_.size() && text_[pos_] == '.') {
            integral = false;
            ++pos_;
            if (!digit(pos_))
                return fail("invalid number");
            while (digit(pos_))
                ++pos_;
        }
        if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
            integral = false;
            ++pos_;
            if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-'))
                ++pos_;
            if (!digit(pos_))
                return fail("invalid number");
            while (digit(pos_))
                ++pos_;
        }
        const char* first = text_.data() + start;
        const char* last = text_.data() + pos_;
        out.type_ = JsonValue::Type::Number;
        double value = 0.0;
        auto parsed = std::from_chars(first, last, value);
        if (parsed.ec == std::errc::result_out_of_range) {
            return fail("number out of range");
        }
        if (parsed.ec != std::errc() || parsed.ptr != last)
            return fail("invalid number");
        out.number_ = value;
        if (integral) {
            int64_t exact = 0;
            auto asInt = std::from_chars(first, last, exact);
            if (asInt.ec == std::errc() && asInt.ptr == last) {
                out.integral_ = true;
                out.integer_ = exact;
            }
        }
        return {};
    }

    std::string_view text_;
    JsonLimits limits_;
    size_t pos_ = 0;
};

Result<JsonValue> parseJson(std::string_view text, JsonLimits limits) {
    JsonParser parser(text, limits);
    return parser.parseDocument();
}

std::string jsonEscape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out;
}

}  // namespace folio::inference
