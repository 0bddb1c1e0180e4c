// SPDX-License-Identifier: GPL-3.0-or-later
// The safetensors reader and writer: a round trip through writeSafetensors and
// SafetensorsFile::open for every dtype the model files use, the dtype conversions (incl. special
// values and round-to-nearest-even), and one test per malformed file, each with its own error that
// names the file and the offending tensor or field.
#include <QtTest>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "inference/safetensors.h"

using folio::Error;
using folio::ErrorCode;
using folio::Status;
using namespace folio::inference;

namespace {

template <typename T>
std::span<const std::byte> bytesOf(const std::vector<T>& values) {
    return std::as_bytes(std::span<const T>(values));
}

// A file: 8-byte little-endian header length, the header, then `dataSize` data bytes.
QByteArray fileWith(const QByteArray& header, qsizetype dataSize,
                    std::optional<uint64_t> lengthOverride = std::nullopt) {
    QByteArray out;
    const uint64_t length = lengthOverride.value_or(uint64_t(header.size()));
    for (int i = 0; i < 8; ++i)
        out.append(static_cast<char>((length >> (8 * i)) & 0xFF));
    out.append(header);
    for (qsizetype i = 0; i < dataSize; ++i)
        out.append(static_cast<char>(i & 0x7F));
    return out;
}

// One tensor entry of a header.
QByteArray entry(const char* name, const char* dtype, const char* shape, const char* offsets) {
    return QByteArray("\"") + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
}

QByteArray object(std::initializer_list<QByteArray> entries) {
    QByteArray out = "{";
    bool first = true;
    for (const QByteArray& e : entries) {
        if (!first)
            out += ",";
        first = false;
        out += e;
    }
    return out + "}";
}

struct MalformedCase {
    const char* name;
    const char* kind;  // rows of one kind share their error; different kinds must not
    QByteArray file;
    QStringList fragments;  // all must appear in the message
};

std::vector<MalformedCase> malformedCases() {
    const QByteArray w4 = entry("w", "F32", "[1]", "[0,4]");
    std::vector<MalformedCase> cases = {
        {"empty file", "short", QByteArray(), {"the file has 0 bytes, fewer than the 8-byte"}},
        {"shorter than 8 bytes",
         "short",
         QByteArray("\x02\x00\x00\x00\x00", 5),
         {"the file has 5 bytes, fewer than the 8-byte header length"}},
        {"header length past the end of the file",
         "past-end",
         fileWith("{}", 0, 1000),
         {"header length 1000 runs past the end of the file (10 bytes)"}},
        {"absurd header length 2^63",
         "limit",
         fileWith("{}", 0, uint64_t{1} << 63),
         {"header length 9223372036854775808 exceeds the limit of 100000000 bytes"}},
        {"header length 2^64-1",
         "limit",
         fileWith("{}", 0, UINT64_MAX),
         {"header length 18446744073709551615 exceeds the limit"}},
        {"header one byte over 100 MB",
         "limit",
         fileWith("{}", 0, 100'000'001),
         {"header length 100000001 exceeds the limit of 100000000 bytes"}},
        {"header shorter than {}",
         "tiny-header",
         fileWith("{", 0),
         {"header is shorter than an empty JSON object"}},
        {"header not JSON",
         "not-json",
         fileWith("{not json}", 0),
         {"invalid JSON at byte 1: expected a string key"}},
        {"broken JSON (unclosed object)",
         "broken-json",
         fileWith(QByteArray("{") + w4 + "   ", 4),
         {"invalid JSON at byte", "unterminated object"}},
        {"broken JSON (duplicate tensor)",
         "duplicate",
         fileWith(object({w4, entry("w", "F32", "[1]", "[4,8]")}), 8),
         {"duplicate key \"w\""}},
        {"header is an array", "not-object", fileWith("[1,2]", 0), {"does not start with '{'"}},
        {"header is a string", "not-object", fileWith("\"{}\"", 0), {"does not start with '{'"}},
        {"unknown dtype",
         "dtype",
         fileWith(object({entry("w", "F8", "[4]", "[0,4]")}), 4),
         {"tensor \"w\"", "unknown dtype \"F8\""}},
        {"lower-case dtype",
         "dtype",
         fileWith(object({entry("w", "f32", "[1]", "[0,4]")}), 4),
         {"tensor \"w\"", "unknown dtype \"f32\""}},
        {"dtype not a string",
         "dtype-type",
         fileWith(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
         {"tensor \"w\"", "missing or non-string \"dtype\""}},
        {"negative dim",
         "dim",
         fileWith(object({entry("w", "F32", "[2,-1]", "[0,4]")}), 4),
         {"tensor \"w\"", "shape holds a value that is not a non-negative integer"}},
        {"non-integer dim",
         "dim",
         fileWith(object({entry("w", "F32", "[1.5]", "[0,4]")}), 4),
         {"tensor \"w\"", "shape holds a value that is not a non-negative integer"}},
        {"string dim",
         "dim",
         fileWith(object({entry("w", "F32", "[\"1\"]", "[0,4]")}), 4),
         {"tensor \"w\"", "shape holds a value that is not a non-negative integer"}},
        {"shape not an array",
         "shape-type",
         fileWith(object({entry("w", "F32", "1", "[0,4]")}), 4),
         {"tensor \"w\"", "missing or non-array \"shape\""}},
        {"17 dimensions",
         "rank",
         fileWith(object({entry("w", "F32", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "[0,4]")}), 4),
         {"tensor \"w\"", "more than 16 dimensions"}},
        {"shape far larger than the file",
         "size",
         fileWith(object({entry("w", "F32", "[1000000000,1000000000]", "[0,4]")}), 4),
         {"tensor \"w\"",
          "shape [1000000000, 1000000000] of F32 needs 4000000000000000000 bytes but "
          "data_offsets give 4"}},
        {"byte size over 2^64",
         "size",
         fileWith(object({entry("w", "I64", "[2147483648,4294967296]", "[0,4]")}), 4),
         {"tensor \"w\"", "of I64 needs over 2^64 bytes but data_offsets give 4"}},
        {"element count over 2^64",
         "elements",
         fileWith(object({entry("w", "U8", "[4294967296,4294967296,2]", "[0,4]")}), 4),
         {"tensor \"w\"",
          "shape [4294967296, 4294967296, 2] has too many elements to count in 64 bits"}},
        {"data_offsets end past the data area",
         "past-data",
         fileWith(object({entry("w", "F32", "[2]", "[0,8]")}), 4),
         {"tensor \"w\"", "data_offsets [0, 8] extend past the data area of 4 bytes"}},
        {"data_offsets far past the data area",
         "past-data",
         fileWith(object({entry("w", "U8", "[4]", "[9223372036854775800,9223372036854775804]")}),
                  4),
         {"tensor \"w\"", "extend past the data area of 4 bytes"}},
        {"reversed data_offsets",
         "reversed",
         fileWith(object({entry("w", "F32", "[1]", "[4,0]")}), 4),
         {"tensor \"w\"", "data_offsets [4, 0] are reversed"}},
        {"negative data_offsets",
         "offsets-type",
         fileWith(object({entry("w", "F32", "[1]", "[-4,0]")}), 4),
         {"tensor \"w\"", "\"data_offsets\" must be non-negative integers"}},
        {"data_offsets with one number",
         "offsets-arity",
         fileWith(object({entry("w", "F32", "[1]", "[4]")}), 4),
         {"tensor \"w\"", "\"data_offsets\" must be an array of two integers"}},
        {"data_offsets missing",
         "offsets-arity",
         fileWith(R"({"w":{"dtype":"F32","shape":[1]}})", 4),
         {"tensor \"w\"", "\"data_offsets\" must be an array of two integers"}},
        {"overlapping tensors",
         "overlap",
         fileWith(object({entry("a", "F32", "[2]", "[0,8]"), entry("b", "F32", "[2]", "[4,12]")}),
                  12),
         {"tensor \"b\" at bytes [4, 12) overlaps tensor \"a\" at [0, 8)"}},
        {"identical ranges",
         "overlap",
         fileWith(object({entry("a", "F32", "[1]", "[0,4]"), entry("b", "F32", "[1]", "[0,4]")}),
                  4),
         {"overlaps tensor"}},
        {"hole between tensors",
         "hole",
         fileWith(object({entry("a", "F32", "[1]", "[0,4]"), entry("b", "F32", "[1]", "[8,12]")}),
                  12),
         {"bytes [4, 8) of the data area belong to no tensor (before \"b\")"}},
        {"hole before the first tensor",
         "hole",
         fileWith(object({entry("a", "F32", "[1]", "[4,8]")}), 8),
         {"bytes [0, 4) of the data area belong to no tensor (before \"a\")"}},
        {"bytes after the last tensor",
         "trailing",
         fileWith(object({w4}), 8),
         {"the data area has 8 bytes but the tensors cover 4"}},
        {"size differs from shape x dtype (wrong dtype)",
         "size",
         fileWith(object({entry("w", "F32", "[2]", "[0,4]")}), 4),
         {"tensor \"w\"", "shape [2] of F32 needs 8 bytes but data_offsets give 4"}},
        {"size differs from shape x dtype (wrong shape)",
         "size",
         fileWith(object({entry("w", "F16", "[3]", "[0,4]")}), 4),
         {"tensor \"w\"", "shape [3] of F16 needs 6 bytes but data_offsets give 4"}},
        {"unknown field",
         "field",
         fileWith(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", 4),
         {"tensor \"w\"", "unknown field \"extra\""}},
        {"entry not an object",
         "entry",
         fileWith(R"({"w":[0,4]})", 0),
         {"tensor \"w\"", "entry is not an object"}},
        {"empty tensor name",
         "name",
         fileWith(object({entry("", "F32", "[1]", "[0,4]")}), 4),
         {"a tensor has an empty name"}},
        {"__metadata__ not an object",
         "metadata",
         fileWith(object({R"("__metadata__":["pt"])", w4}), 4),
         {"\"__metadata__\" is not an object"}},
        {"metadata value not a string",
         "metadata-value",
         fileWith(object({R"("__metadata__":{"format":1})", w4}), 4),
         {"metadata \"format\" is not a string"}},
    };
    return cases;
}

#define EXPECT_IN_MESSAGE(error, fragment)                        \
    QVERIFY2((error).message.find(fragment) != std::string::npos, \
             qPrintable(                                          \
                 QStringLiteral("\"%1\" not in: %2")              \
                     .arg(QString::fromUtf8(fragment), QString::fromStdString((error).message))))

uint32_t floatBits(float f) {
    return std::bit_cast<uint32_t>(f);
}

}  // namespace

class TestSafetensors : public QObject {
    Q_OBJECT

  private slots:
    void initTestCase();
    void roundTrip();
    void roundTripMetadataAndAlignment();
    void zeroSizedTensors();
    void bf16Conversion();
    void f16Conversion();
    void convertSubRange();
    void floatToBf16RoundsToNearestEven();
    void floatToBf16RoundTripsEveryBf16();
    void realTinyModelOpens();
    void malformed_data();
    void malformed();
    void malformedErrorsAreDistinct();
    void truncatedData();
    void truncatedHeader();
    void missingFile();
    void writerRejectsWrongDataSize();

  private:
    std::filesystem::path path(const QString& name) const {
        return std::filesystem::path(dir_.filePath(name).toStdString());
    }
    std::filesystem::path writeBytes(const QString& name, const QByteArray& bytes) {
        QFile file(dir_.filePath(name));
        if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
            qFatal("cannot write %s", qPrintable(file.fileName()));
        file.write(bytes);
        file.close();
        return path(name);
    }

    QTemporaryDir dir_;
};

void TestSafetensors::initTestCase() {
    QVERIFY2(dir_.isValid(), qPrintable(dir_.errorString()));
}

void TestSafetensors::roundTrip() {
    const std::vector<uint16_t> bf16 = {0x3F80, 0xC020, 0x0000, 0x8000, 0x7F80, 0x4049};
    const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x7BFF, 0x0001};
    const std::vector<float> f32 = {1.5f, -0.0f, 3.0e38f, 1e-45f};
    const std::vector<int32_t> i32 = {7, -1, INT32_MAX};
    const std::vector<TensorRecord> records = {
        {"layer.bf16", DType::BF16, {2, 3}, bytesOf(bf16)},
        {"layer.f16", DType::F16, {4}, bytesOf(f16)},
        {"layer.f32", DType::F32, {2, 1, 2}, bytesOf(f32)},
        {"ids", DType::I32, {3}, bytesOf(i32)},
    };
    const auto file = path("round_trip.safetensors");
    Status written = writeSafetensors(file, records);
    QVERIFY2(written.ok(), written.ok() ? "" : written.error().message.c_str());

    auto opened = SafetensorsFile::open(file);
    QVERIFY2(opened.ok(), opened.ok() ? "" : opened.error().message.c_str());
    const SafetensorsHeader& header = opened->header();
    QCOMPARE(header.tensors.size(), records.size());
    QVERIFY(header.metadata.empty());
    uint64_t offset = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        const TensorInfo& info = header.tensors[i];  // header order = written order
        QCOMPARE(info.name, records[i].name);
        QCOMPARE(info.dtype, records[i].dtype);
        QCOMPARE(info.shape, records[i].shape);
        QCOMPARE(info.begin, offset);
        QCOMPARE(info.end - info.begin, uint64_t(records[i].data.size()));
        offset = info.end;

        const TensorInfo* found = opened->find(records[i].name);
        QCOMPARE(found, &info);
        TensorView v = opened->view(info);
        QCOMPARE(std::string(v.name), records[i].name);
        QCOMPARE(v.dtype, records[i].dtype);
        QCOMPARE(v.elements, info.elementCount());
        QVERIFY(std::equal(v.shape.begin(), v.shape.end(), records[i].shape.begin(),
                           records[i].shape.end()));
        QVERIFY(std::memcmp(v.data, records[i].data.data(), records[i].data.size()) == 0);
    }
    QCOMPARE(header.dataSize, offset);
    QCOMPARE(opened->find("absent"), nullptr);
    QCOMPARE(std::filesystem::file_size(file), header.dataOffset + header.dataSize);

    TensorView bf = opened->view(*opened->find("layer.bf16"));
    QCOMPARE(bf.shapeString(), std::string("[2, 3]"));
    std::vector<float> values = toFloatVector(bf);
    QCOMPARE(values.size(), size_t{6});
    QCOMPARE(values[0], 1.0f);
    QCOMPARE(values[1], -2.5f);
    QCOMPARE(floatBits(values[3]), 0x80000000u);
    QVERIFY(std::isinf(values[4]) && values[4] > 0);
    QCOMPARE(values[5], 3.140625f);

    TensorView h = opened->view(*opened->find("layer.f16"));
    values = toFloatVector(h);
    QCOMPARE(values, (std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)}));

    TensorView f = opened->view(*opened->find("layer.f32"));
    values = toFloatVector(f);
    QCOMPARE(values.size(), f32.size());
    for (size_t i = 0; i < f32.size(); ++i)
        QCOMPARE(floatBits(values[i]), floatBits(f32[i]));

    TensorView ids = opened->view(*opened->find("ids"));
    QCOMPARE(ids.dtype, DType::I32);
    QVERIFY(!isFloatingWeightType(ids.dtype));
    int32_t id2 = 0;
    std::memcpy(&id2, ids.data + 8, 4);
    QCOMPARE(id2, INT32_MAX);
}

void TestSafetensors::roundTripMetadataAndAlignment() {
    const std::vector<uint8_t> one = {42};
    const std::vector<TensorRecord> records = {
        {"odd\"name\\with\nescapes", DType::U8, {1}, bytesOf(one)}};
    const std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                         {"note", "quote \" tab \t"}};
    const auto file = path("metadata.safetensors");
    QVERIFY(writeSafetensors(file, records, metadata).ok());
    auto opened = SafetensorsFile::open(file);
    QVERIFY2(opened.ok(), opened.ok() ? "" : opened.error().message.c_str());
    QCOMPARE(opened->header().metadata, metadata);
    QCOMPARE(opened->header().tensors.size(), size_t{1});
    QCOMPARE(opened->header().tensors[0].name, records[0].name);
    // The writer pads the header so that the data area starts 8-byte aligned.
    QCOMPARE(opened->header().dataOffset % 8, uint64_t{0});
    QCOMPARE(dtypeSize(DType::U8), size_t{1});
    QCOMPARE(std::string(dtypeName(DType::BF16)), std::string("BF16"));
    QCOMPARE(std::string(dtypeName(DType::Bool)), std::string("BOOL"));
}

void TestSafetensors::zeroSizedTensors() {
    const std::vector<float> a = {1.0f, 2.0f}, five = {5.0f};
    const std::vector<TensorRecord> records = {
        {"empty.first", DType::F32, {0, 4}, {}},   {"a", DType::F32, {2}, bytesOf(a)},
        {"empty.middle", DType::BF16, {3, 0}, {}}, {"scalar", DType::F32, {}, bytesOf(five)},
        {"empty.last", DType::I64, {0}, {}},
    };
    const auto file = path("zero_sized.safetensors");
    QVERIFY(writeSafetensors(file, records).ok());
    auto opened = SafetensorsFile::open(file);
    QVERIFY2(opened.ok(), opened.ok() ? "" : opened.error().message.c_str());
    QCOMPARE(opened->header().tensors.size(), records.size());
    const TensorInfo* empty = opened->find("empty.middle");
    QVERIFY(empty != nullptr);
    QCOMPARE(empty->begin, empty->end);
    QCOMPARE(empty->elementCount(), uint64_t{0});
    QVERIFY(toFloatVector(opened->view(*empty)).empty());
    const TensorInfo* scalar = opened->find("scalar");
    QVERIFY(scalar != nullptr && scalar->shape.empty());
    QCOMPARE(scalar->elementCount(), uint64_t{1});
    QCOMPARE(toFloatVector(opened->view(*scalar)), std::vector<float>{5.0f});
    QCOMPARE(opened->header().dataSize, uint64_t{12});

    // A file holding only a zero-sized tensor has an empty data area.
    const std::vector<TensorRecord> only = {{"nothing", DType::F32, {0}, {}}};
    QVERIFY(writeSafetensors(path("only_empty.safetensors"), only).ok());
    auto onlyOpened = SafetensorsFile::open(path("only_empty.safetensors"));
    QVERIFY2(onlyOpened.ok(), onlyOpened.ok() ? "" : onlyOpened.error().message.c_str());
    QCOMPARE(onlyOpened->header().dataSize, uint64_t{0});
}

void TestSafetensors::bf16Conversion() {
    QCOMPARE(bf16ToFloat(0x3F80), 1.0f);
    QCOMPARE(bf16ToFloat(0xC020), -2.5f);
    QCOMPARE(floatBits(bf16ToFloat(0x0000)), 0x00000000u);
    QCOMPARE(floatBits(bf16ToFloat(0x8000)), 0x80000000u);
    QCOMPARE(bf16ToFloat(0x7F80), std::numeric_limits<float>::infinity());
    QCOMPARE(bf16ToFloat(0xFF80), -std::numeric_limits<float>::infinity());
    QVERIFY(std::isnan(bf16ToFloat(0x7FC0)));
    QVERIFY(std::isnan(bf16ToFloat(0xFF81)));
    QCOMPARE(bf16ToFloat(0x0001), std::ldexp(1.0f, -133));  // smallest subnormal
    QCOMPARE(bf16ToFloat(0x0080), std::numeric_limits<float>::min());
    QCOMPARE(bf16ToFloat(0x7F7F), 3.38953139e38f);  // largest finite
}

void TestSafetensors::f16Conversion() {
    QCOMPARE(halfToFloat(0x3C00), 1.0f);
    QCOMPARE(halfToFloat(0xC000), -2.0f);
    QCOMPARE(halfToFloat(0x7BFF), 65504.0f);               // largest finite
    QCOMPARE(halfToFloat(0x0400), std::ldexp(1.0f, -14));  // smallest normal
    QCOMPARE(halfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
    QCOMPARE(halfToFloat(0x8001), -std::ldexp(1.0f, -24));
    QCOMPARE(halfToFloat(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
    QCOMPARE(halfToFloat(0x0200), std::ldexp(1.0f, -15));
    QCOMPARE(halfToFloat(0x3555), 0.333251953125f);
    QCOMPARE(floatBits(halfToFloat(0x0000)), 0x00000000u);
    QCOMPARE(floatBits(halfToFloat(0x8000)), 0x80000000u);
    QCOMPARE(halfToFloat(0x7C00), std::numeric_limits<float>::infinity());
    QCOMPARE(halfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
    QVERIFY(std::isnan(halfToFloat(0x7E00)));
    QVERIFY(std::isnan(halfToFloat(0x7C01)));  // the smallest NaN payload stays a NaN
    // Every finite half converts exactly: compare against the textbook formula.
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
        if (exponent == 0x1F)
            continue;
        float expected = exponent == 0 ? std::ldexp(float(mantissa), -24)
                                       : std::ldexp(float(mantissa + 1024), int(exponent) - 25);
        if (h & 0x8000)
            expected = -expected;
        if (floatBits(halfToFloat(uint16_t(h))) != floatBits(expected))
            QFAIL(qPrintable(QStringLiteral("half 0x%1").arg(h, 4, 16, QLatin1Char('0'))));
    }
}

void TestSafetensors::convertSubRange() {
    std::vector<uint16_t> bits(10);
    for (size_t i = 0; i < bits.size(); ++i)
        bits[i] = floatToBf16(float(i) + 0.5f);
    const std::vector<TensorRecord> records = {{"v", DType::BF16, {10}, bytesOf(bits)}};
    QVERIFY(writeSafetensors(path("sub_range.safetensors"), records).ok());
    auto opened = SafetensorsFile::open(path("sub_range.safetensors"));
    QVERIFY(opened.ok());
    TensorView v = opened->view(opened->header().tensors[0]);
    float out[6] = {-1, -1, -1, -1, -1, -1};
    convertToFloat(v, 3, 4, out + 1);
    QCOMPARE(out[0], -1.0f);  // nothing written outside [out + 1, out + 5)
    QCOMPARE(out[1], 3.5f);
    QCOMPARE(out[4], 6.5f);
    QCOMPARE(out[5], -1.0f);
}

void TestSafetensors::floatToBf16RoundsToNearestEven() {
    auto fromBits = [](uint32_t b) { return std::bit_cast<float>(b); };
    QCOMPARE(floatToBf16(1.0f), uint16_t{0x3F80});
    QCOMPARE(floatToBf16(-2.5f), uint16_t{0xC020});
    // Exactly halfway: ties go to the even neighbour, up or down.
    QCOMPARE(floatToBf16(fromBits(0x3F808000)), uint16_t{0x3F80});
    QCOMPARE(floatToBf16(fromBits(0x3F818000)), uint16_t{0x3F82});
    QCOMPARE(floatToBf16(fromBits(0xBF818000)), uint16_t{0xBF82});
    // Off the midpoint: to the nearest.
    QCOMPARE(floatToBf16(fromBits(0x3F808001)), uint16_t{0x3F81});
    QCOMPARE(floatToBf16(fromBits(0x3F807FFF)), uint16_t{0x3F80});
    QCOMPARE(floatToBf16(fromBits(0xBF808001)), uint16_t{0xBF81});
    // Carry into the exponent, and overflow of the largest floats to infinity.
    QCOMPARE(floatToBf16(fromBits(0x3FFFFFFF)), uint16_t{0x4000});
    QCOMPARE(floatToBf16(fromBits(0x7F7FFFFF)), uint16_t{0x7F80});
    QCOMPARE(floatToBf16(fromBits(0x7F7F7FFF)), uint16_t{0x7F7F});
    // Subnormals round too.
    QCOMPARE(floatToBf16(fromBits(0x00008000)), uint16_t{0x0000});
    QCOMPARE(floatToBf16(fromBits(0x00018000)), uint16_t{0x0002});
    QCOMPARE(floatToBf16(fromBits(0x80000001)), uint16_t{0x8000});
    // Special values.
    QCOMPARE(floatToBf16(-0.0f), uint16_t{0x8000});
    QCOMPARE(floatToBf16(std::numeric_limits<float>::infinity()), uint16_t{0x7F80});
    QCOMPARE(floatToBf16(-std::numeric_limits<float>::infinity()), uint16_t{0xFF80});
    // NaN stays NaN, whatever its payload (truncation alone would turn 0x7F800001 into +inf).
    for (uint32_t nan : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu}) {
        const uint16_t b = floatToBf16(fromBits(nan));
        QVERIFY2(std::isnan(bf16ToFloat(b)), qPrintable(QString::number(nan, 16)));
        QCOMPARE(b & 0x8000, int((nan >> 16) & 0x8000));
    }
}

void TestSafetensors::floatToBf16RoundTripsEveryBf16() {
    for (uint32_t b = 0; b < 0x10000; ++b) {
        const float f = bf16ToFloat(uint16_t(b));
        if (std::isnan(f))
            continue;
        if (floatToBf16(f) != b)
            QFAIL(qPrintable(QStringLiteral("bf16 0x%1").arg(b, 4, 16, QLatin1Char('0'))));
    }
}

void TestSafetensors::realTinyModelOpens() {
    const auto file = std::filesystem::path(FOLIO_GOLDEN_DIR) / "tiny" / "model.safetensors";
    auto opened = SafetensorsFile::open(file);
    QVERIFY2(opened.ok(), opened.ok() ? "" : opened.error().message.c_str());
    const TensorInfo* aLog = opened->find("model.layers.0.self_attn.A_log");
    QVERIFY(aLog != nullptr);
    QCOMPARE(aLog->dtype, DType::F32);
    QCOMPARE(aLog->shape, (std::vector<int64_t>{1, 1, 2, 1}));
    const TensorInfo* embed = opened->find("model.embed_tokens.weight");
    QVERIFY(embed != nullptr);
    QCOMPARE(embed->dtype, DType::BF16);
    QCOMPARE(embed->shape, (std::vector<int64_t>{512, 128}));
    for (float x : toFloatVector(opened->view(*aLog)))
        QVERIFY(std::isfinite(x));
}

void TestSafetensors::malformed_data() {
    QTest::addColumn<QByteArray>("file");
    QTest::addColumn<QStringList>("fragments");
    for (const MalformedCase& c : malformedCases())
        QTest::newRow(c.name) << c.file << c.fragments;
}

void TestSafetensors::malformed() {
    QFETCH(QByteArray, file);
    QFETCH(QStringList, fragments);
    const auto written = writeBytes(QStringLiteral("malformed.safetensors"), file);
    auto opened = SafetensorsFile::open(written);
    QVERIFY2(!opened.ok(), "a malformed file opened");
    const Error& error = opened.error();
    QCOMPARE(error.code, ErrorCode::Format);
    // The message names the file, then what is wrong with it.
    EXPECT_IN_MESSAGE(error, written.string() + ": invalid safetensors header: ");
    for (const QString& fragment : fragments)
        EXPECT_IN_MESSAGE(error, fragment.toStdString());

    // The header parser alone gives the same reason.
    auto parsed = parseSafetensorsHeader(
        std::as_bytes(std::span<const char>(file.constData(), static_cast<size_t>(file.size()))));
    QVERIFY(!parsed.ok());
    QVERIFY(error.message.ends_with(parsed.error().message));
}

void TestSafetensors::malformedErrorsAreDistinct() {
    std::map<std::string, std::string> kindOfMessage;
    for (const MalformedCase& c : malformedCases()) {
        auto parsed = parseSafetensorsHeader(std::as_bytes(
            std::span<const char>(c.file.constData(), static_cast<size_t>(c.file.size()))));
        QVERIFY2(!parsed.ok(), c.name);
        // Numbers differ between rows of one kind; compare the words only.
        std::string words;
        for (char ch : parsed.error().message)
            words += (ch >= '0' && ch <= '9') ? '#' : ch;
        auto [it, inserted] = kindOfMessage.emplace(words, c.kind);
        QVERIFY2(inserted || it->second == c.kind,
                 qPrintable(QStringLiteral("%1 gives the same error as kind %2: %3")
                                .arg(c.name, it->second.c_str(), words.c_str())));
    }
    std::set<std::string> kinds;
    for (const auto& [words, kind] : kindOfMessage)
        kinds.insert(kind);
    QVERIFY(kinds.size() >= 25);
}

void TestSafetensors::truncatedData() {
    const std::vector<float> a(16, 1.0f), b(16, 2.0f);
    const std::vector<TensorRecord> records = {{"first", DType::F32, {4, 4}, bytesOf(a)},
                                               {"second", DType::F32, {16}, bytesOf(b)}};
    const auto file = path("truncated.safetensors");
    QVERIFY(writeSafetensors(file, records).ok());
    auto good = SafetensorsFile::open(file);
    QVERIFY(good.ok());
    const uint64_t dataOffset = good->header().dataOffset;

    std::filesystem::resize_file(file, std::filesystem::file_size(file) - 3);
    auto cut = SafetensorsFile::open(file);
    QVERIFY(!cut.ok());
    QCOMPARE(cut.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(cut.error(), file.string());
    EXPECT_IN_MESSAGE(cut.error(), "tensor \"second\"");
    EXPECT_IN_MESSAGE(cut.error(), "data_offsets [64, 128] extend past the data area of 125 bytes");

    // Cut inside the first tensor: the first tensor is the one past the end.
    std::filesystem::resize_file(file, dataOffset + 10);
    auto cutMore = SafetensorsFile::open(file);
    QVERIFY(!cutMore.ok());
    EXPECT_IN_MESSAGE(cutMore.error(),
                      "tensor \"first\": data_offsets [0, 64] extend past the data area of 10");

    // Cut exactly at the data area: nothing of the data is left.
    std::filesystem::resize_file(file, dataOffset);
    auto noData = SafetensorsFile::open(file);
    QVERIFY(!noData.ok());
    EXPECT_IN_MESSAGE(
        noData.error(),
        "tensor \"first\": data_offsets [0, 64] extend past the data area of 0 bytes");
}

void TestSafetensors::truncatedHeader() {
    const std::vector<float> a(4, 1.0f);
    const std::vector<TensorRecord> records = {{"w", DType::F32, {4}, bytesOf(a)}};
    const auto file = path("truncated_header.safetensors");
    QVERIFY(writeSafetensors(file, records).ok());
    std::filesystem::resize_file(file, 20);
    auto cut = SafetensorsFile::open(file);
    QVERIFY(!cut.ok());
    QCOMPARE(cut.error().code, ErrorCode::Format);
    EXPECT_IN_MESSAGE(cut.error(), "runs past the end of the file (20 bytes)");
}

void TestSafetensors::missingFile() {
    const auto file = path("does_not_exist.safetensors");
    auto opened = SafetensorsFile::open(file);
    QVERIFY(!opened.ok());
    QCOMPARE(opened.error().code, ErrorCode::NotFound);
    EXPECT_IN_MESSAGE(opened.error(), file.string());
}

void TestSafetensors::writerRejectsWrongDataSize() {
    const std::vector<float> three = {1, 2, 3};
    const std::vector<TensorRecord> records = {{"w", DType::F32, {4}, bytesOf(three)}};
    Status status = writeSafetensors(path("wrong_size.safetensors"), records);
    QVERIFY(!status.ok());
    QCOMPARE(status.error().code, ErrorCode::InvalidArgument);
    EXPECT_IN_MESSAGE(status.error(), "tensor w has 12 bytes of data, its shape needs 16");
}

QTEST_GUILESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
