// SPDX-License-Identifier: GPL-3.0-or-later
// The strict JSON reader behind config.json, safetensors headers and shard indexes: what it
// accepts (RFC 8259, exact int64 integers) and that every malformed document gets its own error
// with the byte offset of the problem.
#include <QtTest>

#include <cmath>
#include <string>
#include <string_view>

#include "inference/json.h"

using folio::ErrorCode;
using folio::inference::JsonLimits;
using folio::inference::JsonValue;
using folio::inference::parseJson;

namespace {

std::string_view view(const QByteArray& bytes) {
    return {bytes.constData(), static_cast<size_t>(bytes.size())};
}

std::string nested(int arrays, std::string_view inner) {
    return std::string(static_cast<size_t>(arrays), '[') + std::string(inner) +
           std::string(static_cast<size_t>(arrays), ']');
}

}  // namespace

class TestJson : public QObject {
    Q_OBJECT

  private slots:
    void nestedDocument();
    void topLevelScalars();
    void whitespaceAroundValues();
    void escapes();
    void surrogatePairs();
    void rawUtf8PassesThrough();
    void numbers_data();
    void numbers();
    void integersExactToInt64();
    void depthLimit();
    void findAndTypeNames();
    void rejects_data();
    void rejects();
    void depthOverTheLimitIsRejected();
};

void TestJson::nestedDocument() {
    auto parsed = parseJson(R"({"a":[1,{"b":[true,false,null]},"x"],"c":{},"d":[]})");
    QVERIFY2(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    const JsonValue& root = *parsed;
    QVERIFY(root.isObject());
    QCOMPARE(root.members().size(), size_t{3});
    // Member order is the document's order.
    QCOMPARE(root.members()[0].first, std::string("a"));
    QCOMPARE(root.members()[1].first, std::string("c"));
    QCOMPARE(root.members()[2].first, std::string("d"));

    const JsonValue* a = root.find("a");
    QVERIFY(a != nullptr && a->isArray());
    QCOMPARE(a->items().size(), size_t{3});
    QCOMPARE(a->items()[0].integer().value_or(-1), int64_t{1});
    const JsonValue& inner = a->items()[1];
    QVERIFY(inner.isObject());
    const JsonValue* b = inner.find("b");
    QVERIFY(b != nullptr && b->isArray());
    QCOMPARE(b->items().size(), size_t{3});
    QVERIFY(b->items()[0].isBool() && b->items()[0].boolean());
    QVERIFY(b->items()[1].isBool() && !b->items()[1].boolean());
    QVERIFY(b->items()[2].isNull());
    QCOMPARE(a->items()[2].string(), std::string("x"));

    const JsonValue* c = root.find("c");
    QVERIFY(c != nullptr && c->isObject() && c->members().empty());
    const JsonValue* d = root.find("d");
    QVERIFY(d != nullptr && d->isArray() && d->items().empty());
}

void TestJson::topLevelScalars() {
    auto t = parseJson("true");
    QVERIFY(t.ok() && t->isBool() && t->boolean());
    auto n = parseJson("null");
    QVERIFY(n.ok() && n->isNull());
    auto i = parseJson("42");
    QVERIFY(i.ok() && i->isNumber());
    QCOMPARE(i->integer().value_or(0), int64_t{42});
    auto s = parseJson(R"("text")");
    QVERIFY(s.ok() && s->isString());
    QCOMPARE(s->string(), std::string("text"));
}

void TestJson::whitespaceAroundValues() {
    auto parsed = parseJson(" \t\r\n{ \"k\" \n:\t[ 1 ,\r\n2 ] } \n\t");
    QVERIFY2(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    const JsonValue* k = parsed->find("k");
    QVERIFY(k != nullptr && k->isArray());
    QCOMPARE(k->items().size(), size_t{2});
    QCOMPARE(k->items()[1].integer().value_or(0), int64_t{2});
}

void TestJson::escapes() {
    auto parsed = parseJson(R"("q\"b\\s\/b\bf\fn\nr\rt\t")");
    QVERIFY2(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    QCOMPARE(parsed->string(), std::string("q\"b\\s/b\bf\fn\nr\rt\t"));

    // \u escapes become UTF-8: 1, 2 and 3 bytes; hex digits in either case.
    auto unicode = parseJson(R"("\u0041\u00e9\u20AC\u00E9")");
    QVERIFY(unicode.ok());
    QCOMPARE(unicode->string(), std::string("A\xC3\xA9\xE2\x82\xAC\xC3\xA9"));

    // An escaped NUL is a real character of the string, not its end.
    auto nul = parseJson(R"("a\u0000b")");
    QVERIFY(nul.ok());
    QCOMPARE(nul->string(), std::string("a\0b", 3));
}

void TestJson::surrogatePairs() {
    auto grin = parseJson(R"("\ud83d\ude00")");  // U+1F600
    QVERIFY2(grin.ok(), grin.ok() ? "" : grin.error().message.c_str());
    QCOMPARE(grin->string(), std::string("\xF0\x9F\x98\x80"));

    auto clef = parseJson(R"(["x\uD834\uDD1Ey"])");  // U+1D11E inside other text
    QVERIFY(clef.ok());
    QCOMPARE(clef->items()[0].string(), std::string("x\xF0\x9D\x84\x9Ey"));

    auto highest = parseJson(R"("\udbff\udfff")");  // U+10FFFF, the last code point
    QVERIFY(highest.ok());
    QCOMPARE(highest->string(), std::string("\xF4\x8F\xBF\xBF"));
}

void TestJson::rawUtf8PassesThrough() {
    const std::string text = "\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"";
    auto parsed = parseJson(text);
    QVERIFY2(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    QCOMPARE(parsed->string(), text.substr(1, text.size() - 2));
}

void TestJson::numbers_data() {
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<double>("value");
    QTest::addColumn<bool>("integral");

    QTest::newRow("zero") << QByteArray("0") << 0.0 << true;
    QTest::newRow("negative zero") << QByteArray("-0") << -0.0 << true;
    QTest::newRow("fraction") << QByteArray("1.5") << 1.5 << false;
    QTest::newRow("one point zero") << QByteArray("1.0") << 1.0 << false;
    QTest::newRow("negative exponent") << QByteArray("-2.25e3") << -2250.0 << false;
    QTest::newRow("capital E") << QByteArray("1E-2") << 0.01 << false;
    QTest::newRow("exponent with plus") << QByteArray("6.02e+23") << 6.02e23 << false;
    QTest::newRow("integer with exponent") << QByteArray("1e2") << 100.0 << false;
    QTest::newRow("rms_norm_eps") << QByteArray("1e-05") << 1e-5 << false;
    QTest::newRow("scaling factor") << QByteArray("2.446") << 2.446 << false;
    QTest::newRow("largest double")
        << QByteArray("1.7976931348623157e308") << 1.7976931348623157e308 << false;
}

void TestJson::numbers() {
    QFETCH(QByteArray, text);
    QFETCH(double, value);
    QFETCH(bool, integral);
    auto parsed = parseJson(view(text));
    QVERIFY2(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    QVERIFY(parsed->isNumber());
    QCOMPARE(parsed->number(), value);
    QCOMPARE(std::signbit(parsed->number()), std::signbit(value));
    QCOMPARE(parsed->integer().has_value(), integral);
}

void TestJson::integersExactToInt64() {
    // Beyond what a double-only reader would give exactly: every digit must survive.
    const struct {
        const char* text;
        int64_t value;
    } exact[] = {
        {"98000000000", 98000000000},           {"163840", 163840},
        {"9007199254740993", 9007199254740993},  // 2^53 + 1: not representable as a double
        {"9223372036854775807", INT64_MAX},     {"-9223372036854775808", INT64_MIN},
    };
    for (const auto& e : exact) {
        auto parsed = parseJson(e.text);
        QVERIFY2(parsed.ok(), e.text);
        QVERIFY2(parsed->integer().has_value(), e.text);
        QCOMPARE(*parsed->integer(), e.value);
    }
    // One past int64: still a valid number, but no exact integer.
    auto big = parseJson("9223372036854775808");
    QVERIFY(big.ok());
    QVERIFY(!big->integer().has_value());
    QCOMPARE(big->number(), 9223372036854775808.0);
    // Non-numbers have no integer either.
    auto str = parseJson(R"("12")");
    QVERIFY(str.ok() && !str->integer().has_value());
}

void TestJson::depthLimit() {
    // A value may sit inside at most maxDepth containers (default 64).
    auto ok64 = parseJson(nested(64, "1"));
    QVERIFY2(ok64.ok(), ok64.ok() ? "" : ok64.error().message.c_str());

    std::string objects;
    for (int i = 0; i < 64; ++i)
        objects += "{\"k\":";
    objects += "null";
    objects += std::string(64, '}');
    QVERIFY(parseJson(objects).ok());

    auto small = parseJson("[[[1]]]", JsonLimits{.maxDepth = 3});
    QVERIFY(small.ok());
}

void TestJson::depthOverTheLimitIsRejected() {
    auto deep = parseJson(nested(65, "1"));
    QVERIFY(!deep.ok());
    QCOMPARE(deep.error().code, ErrorCode::Format);
    QVERIFY2(deep.error().message.find("deeper than the limit") != std::string::npos,
             deep.error().message.c_str());
    QVERIFY2(deep.error().message.find("at byte 65") != std::string::npos,
             deep.error().message.c_str());

    std::string objects;
    for (int i = 0; i < 65; ++i)
        objects += "{\"k\":";
    objects += "0" + std::string(65, '}');
    auto deepObjects = parseJson(objects);
    QVERIFY(!deepObjects.ok());
    QVERIFY(deepObjects.error().message.find("deeper than the limit") != std::string::npos);

    auto small = parseJson("[[[[1]]]]", JsonLimits{.maxDepth = 3});
    QVERIFY(!small.ok());
    QVERIFY(small.error().message.find("deeper than the limit") != std::string::npos);

    // Far deeper than the limit: rejected without exhausting the stack.
    auto huge = parseJson(nested(1'000'000, ""));
    QVERIFY(!huge.ok());
    QVERIFY(huge.error().message.find("deeper than the limit") != std::string::npos);
}

void TestJson::findAndTypeNames() {
    auto parsed = parseJson(R"({"a":1,"b":[2]})");
    QVERIFY(parsed.ok());
    QVERIFY(parsed->find("a") != nullptr);
    QVERIFY(parsed->find("missing") == nullptr);
    QVERIFY(parsed->find("") == nullptr);
    // find() on a non-object is a lookup miss, not an error.
    QVERIFY(parsed->find("b")->find("a") == nullptr);
    QCOMPARE(std::string(JsonValue::typeName(JsonValue::Type::Object)), std::string("an object"));
    QCOMPARE(std::string(JsonValue::typeName(JsonValue::Type::Number)), std::string("a number"));
    QCOMPARE(std::string(JsonValue::typeName(JsonValue::Type::Null)), std::string("null"));
}

void TestJson::rejects_data() {
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("where");  // "at byte N"
    QTest::addColumn<QString>("what");   // the reason in the message

    auto row = [](const char* name, QByteArray text, int byte, const char* what) {
        QTest::newRow(name) << text << QStringLiteral("at byte %1:").arg(byte)
                            << QString::fromUtf8(what);
    };
    // Trailing garbage.
    row("trailing word", R"({"a":1} x)", 8, "unexpected content after the JSON value");
    row("two values", "[1] [2]", 4, "unexpected content after the JSON value");
    row("extra bracket", "[1]]", 3, "unexpected content after the JSON value");
    // Duplicate keys, also nested.
    row("duplicate key", R"({"a":1,"a":2})", 10, "duplicate key \"a\"");
    row("duplicate nested key", R"({"x":{"k":1,"b":0,"k":3}})", 21, "duplicate key \"k\"");
    // Strings.
    row("unterminated string", R"("abc)", 4, "unterminated string");
    row("unterminated key", R"({"ab)", 4, "unterminated string");
    row("unterminated value", R"({"a":"b)", 7, "unterminated string");
    row("unterminated escape", "\"ab\\", 4, "unterminated escape");
    row("invalid escape", R"("\x")", 3, "invalid escape");
    row("bad hex in \\u", R"("\u12G4")", 6, "invalid hex digit in \\u escape");
    row("truncated \\u", R"("\u12)", 3, "truncated \\u escape");
    row("control char",
        QByteArray("\"a\x01"
                   "b\""),
        2, "control character in string");
    row("raw newline", "\"a\nb\"", 2, "control character in string");
    row("raw tab", "\"a\tb\"", 2, "control character in string");
    row("single quotes", "'a'", 0, "unexpected character");
    // Invalid UTF-8 bytes.
    row("0xFF byte", "\"\xFF\"", 1, "invalid UTF-8 in string");
    row("lone continuation", "\"a\x80\"", 2, "invalid UTF-8 in string");
    row("overlong slash", "\"\xC0\xAF\"", 1, "invalid UTF-8 in string");
    row("overlong 3-byte", "\"\xE0\x80\xAF\"", 1, "invalid UTF-8 in string");
    row("encoded surrogate", "\"\xED\xA0\x80\"", 1, "invalid UTF-8 in string");
    row("above U+10FFFF", "\"\xF4\x90\x80\x80\"", 1, "invalid UTF-8 in string");
    row("five-byte lead", "\"\xF8\x88\x80\x80\x80\"", 1, "invalid UTF-8 in string");
    row("missing continuation", "\"\xE2\x82\"", 1, "invalid UTF-8 in string");
    row("truncated at end", "\"\xE2\x82", 1, "truncated UTF-8 in string");
    row("invalid UTF-8 in key", "{\"\xFE\":1}", 2, "invalid UTF-8 in string");
    // Lone surrogates in \u escapes.
    row("lone high surrogate", R"("\ud800")", 7, "unpaired surrogate in \\u escape");
    row("lone low surrogate", R"("\udc00")", 7, "unpaired surrogate in \\u escape");
    row("high then letter", R"("\ud800\u0041")", 13, "unpaired surrogate in \\u escape");
    row("high then text", R"("\ud800abc")", 7, "unpaired surrogate in \\u escape");
    row("two highs", R"("\ud800\ud800")", 13, "unpaired surrogate in \\u escape");
    // Numbers.
    row("leading zero", "01", 1, "leading zero in number");
    row("leading zeros in array", "[00]", 2, "leading zero in number");
    row("negative leading zero", "-012", 2, "leading zero in number");
    row("leading zero fraction", "[007.5]", 2, "leading zero in number");
    row("plus sign", "+1", 0, "unexpected character");
    row("bare minus", "-", 1, "invalid number");
    row("minus letter", "-a", 1, "invalid number");
    row("dot first", ".5", 0, "unexpected character");
    row("dot last", "1.", 2, "invalid number");
    row("exponent without digits", "1e", 2, "invalid number");
    row("exponent sign only", "1e+", 3, "invalid number");
    row("out of range", "1e400", 5, "number out of range");
    row("NaN", "NaN", 0, "unexpected character");
    row("Infinity", "-Infinity", 1, "invalid number");
    row("hex", "0x10", 1, "unexpected content after the JSON value");
    // Literals.
    row("truncated true", "tru", 0, "invalid literal");
    row("capital True", "True", 0, "unexpected character");
    row("nul", "[nul]", 1, "invalid literal");
    // Structure.
    row("empty input", "", 0, "unexpected end of input");
    row("only whitespace", " \n\t", 3, "unexpected end of input");
    row("unclosed array", "[1", 2, "unterminated array");
    row("unclosed object", R"({"a":1)", 6, "unterminated object");
    row("missing value", R"({"a":})", 5, "unexpected character");
    row("missing colon", R"({"a" 1})", 5, "expected ':'");
    row("key not a string", "{1:2}", 1, "expected a string key");
    row("trailing comma in object", R"({"a":1,})", 7, "expected a string key");
    row("trailing comma in array", "[1,]", 3, "unexpected character");
    row("missing comma", "[1 2]", 3, "expected ',' or ']'");
    row("object separator", R"({"a":1;"b":2})", 6, "expected ',' or '}'");
    row("comment", "// x\n{}", 0, "unexpected character");
}

void TestJson::rejects() {
    QFETCH(QByteArray, text);
    QFETCH(QString, where);
    QFETCH(QString, what);
    auto parsed = parseJson(view(text));
    QVERIFY2(!parsed.ok(), "accepted a malformed document");
    QCOMPARE(parsed.error().code, ErrorCode::Format);
    const QString message = QString::fromStdString(parsed.error().message);
    QVERIFY2(message.startsWith(QStringLiteral("invalid JSON ")), qPrintable(message));
    QVERIFY2(message.contains(where), qPrintable(message));
    QVERIFY2(message.endsWith(what), qPrintable(message));
}

QTEST_APPLESS_MAIN(TestJson)
#include "test_json.moc"
