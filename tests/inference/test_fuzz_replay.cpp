// SPDX-License-Identifier: GPL-3.0-or-later
// Replays the fuzz targets of tests/fuzz/ without libFuzzer, so that every CI build (gcc, no
// sanitizers needed) runs the same entry points: the committed seed corpus, every truncation of
// the small seeds, and a few thousand deterministic mutations per target (bit flips, byte
// changes, insertions, deletions, splices, extreme numbers, random length prefixes). The targets
// abort on any broken invariant, so "no crash" here means both "no crash" and "every accepted
// input keeps the parser's promises". Seeds named valid-* must parse, invalid-* must not.
#include <QtTest>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "inference/json.h"
#include "inference/model_config.h"
#include "inference/safetensors.h"

// The three fuzz targets, compiled with their entry points renamed (see parsers.cmake).
extern "C" int folioFuzzJson(const uint8_t* data, size_t size);
extern "C" int folioFuzzSafetensors(const uint8_t* data, size_t size);
extern "C" int folioFuzzModelConfig(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;
using Entry = int (*)(const uint8_t*, size_t);

struct Seed {
    QString name;
    Bytes bytes;
};

std::vector<Seed> loadSeeds(const QString& target) {
    QDir dir(QStringLiteral(FOLIO_FUZZ_CORPUS_DIR "/") + target);
    std::vector<Seed> seeds;
    for (const QFileInfo& info : dir.entryInfoList(QDir::Files, QDir::Name)) {
        QFile file(info.filePath());
        if (!file.open(QIODevice::ReadOnly))
            qFatal("cannot read %s", qPrintable(info.filePath()));
        const QByteArray content = file.readAll();
        seeds.push_back({info.fileName(), Bytes(content.begin(), content.end())});
    }
    return seeds;
}

// Deterministic mutations: std::mt19937_64's output is fixed by the standard, and only its raw
// output is used (distributions differ between standard libraries).
class Mutator {
  public:
    explicit Mutator(uint64_t seed) : rng_(seed) {}

    Bytes mutate(const Bytes& input, const std::vector<Seed>& seeds) {
        Bytes out = input;
        const uint64_t operations = 1 + below(4);
        for (uint64_t i = 0; i < operations; ++i)
            apply(out, seeds);
        return out;
    }

    uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  private:
    void apply(Bytes& b, const std::vector<Seed>& seeds) {
        static constexpr std::array<uint8_t, 20> kBytes = {0x00, 0xFF, 0x7F, 0x80, 0xC0, 0xED, 0xF4,
                                                           '"',  '\\', '{',  '}',  '[',  ']',  ',',
                                                           ':',  '0',  '9',  '-',  'e',  ' '};
        static constexpr std::array<std::string_view, 22> kTokens = {"{",
                                                                     "}",
                                                                     "[",
                                                                     "]",
                                                                     "\"",
                                                                     ",",
                                                                     ":",
                                                                     "null",
                                                                     "true",
                                                                     "\\u",
                                                                     "\\ud800",
                                                                     "\\udc00",
                                                                     "-",
                                                                     "e",
                                                                     "0",
                                                                     ".",
                                                                     "1e999",
                                                                     "\xFF",
                                                                     "\xC0\xAF",
                                                                     "\"dtype\":\"BF16\"",
                                                                     "\"shape\":[]",
                                                                     "\"data_offsets\":[0,0]"};
        static constexpr std::array<std::string_view, 14> kNumbers = {"0",
                                                                      "-1",
                                                                      "1",
                                                                      "2",
                                                                      "4096",
                                                                      "4097",
                                                                      "16777216",
                                                                      "16777217",
                                                                      "2147483648",
                                                                      "9223372036854775807",
                                                                      "-9223372036854775808",
                                                                      "18446744073709551616",
                                                                      "1e308",
                                                                      "0.5"};
        switch (below(10)) {
            case 0:  // flip one bit
                if (!b.empty())
                    b[below(b.size())] ^= static_cast<uint8_t>(1u << below(8));
                break;
            case 1:  // set one byte to a value parsers care about
                if (!b.empty())
                    b[below(b.size())] = kBytes[below(kBytes.size())];
                break;
            case 2: {  // insert random bytes
                const uint64_t n = 1 + below(8);
                const auto at = static_cast<ptrdiff_t>(below(b.size() + 1));
                Bytes extra(n);
                for (auto& x : extra)
                    x = static_cast<uint8_t>(rng_());
                b.insert(b.begin() + at, extra.begin(), extra.end());
                break;
            }
            case 3: {  // erase a range
                if (b.empty())
                    break;
                const uint64_t at = below(b.size());
                const uint64_t n = 1 + below(std::min<uint64_t>(16, b.size() - at));
                b.erase(b.begin() + static_cast<ptrdiff_t>(at),
                        b.begin() + static_cast<ptrdiff_t>(at + n));
                break;
            }
            case 4: {  // copy a range elsewhere
                if (b.empty())
                    break;
                const uint64_t from = below(b.size());
                const uint64_t n = 1 + below(std::min<uint64_t>(32, b.size() - from));
                const Bytes part(b.begin() + static_cast<ptrdiff_t>(from),
                                 b.begin() + static_cast<ptrdiff_t>(from + n));
                b.insert(b.begin() + static_cast<ptrdiff_t>(below(b.size() + 1)), part.begin(),
                         part.end());
                break;
            }
            case 5:  // truncate
                b.resize(below(b.size() + 1));
                break;
            case 6: {  // a random or extreme 8-byte length prefix (safetensors' header length)
                static constexpr std::array<uint64_t, 8> kLengths = {
                    0, 1, 2, 100'000'000, 100'000'001, uint64_t{1} << 63, UINT64_MAX, 0x7FFFFFFF};
                uint64_t length = below(3) == 0 ? rng_() : kLengths[below(kLengths.size())];
                if (below(3) == 0 && b.size() >= 8)
                    length = b.size() - 8 + below(5) - 2;  // near the real end
                if (b.size() < 8)
                    b.resize(8);
                for (int i = 0; i < 8; ++i)
                    b[static_cast<size_t>(i)] = static_cast<uint8_t>(length >> (8 * i));
                break;
            }
            case 7: {  // replace a run of digits by an extreme number
                if (b.empty())
                    break;
                size_t at = below(b.size());
                while (at < b.size() && !(b[at] >= '0' && b[at] <= '9'))
                    ++at;
                size_t end = at;
                while (end < b.size() && b[end] >= '0' && b[end] <= '9')
                    ++end;
                const std::string_view number = kNumbers[below(kNumbers.size())];
                b.erase(b.begin() + static_cast<ptrdiff_t>(at),
                        b.begin() + static_cast<ptrdiff_t>(end));
                b.insert(b.begin() + static_cast<ptrdiff_t>(at), number.begin(), number.end());
                break;
            }
            case 8: {  // splice: this input's head, another seed's tail
                const Bytes& other = seeds[below(seeds.size())].bytes;
                b.resize(below(b.size() + 1));
                const uint64_t from = below(other.size() + 1);
                b.insert(b.end(), other.begin() + static_cast<ptrdiff_t>(from), other.end());
                break;
            }
            default: {  // insert a token
                const std::string_view token = kTokens[below(kTokens.size())];
                b.insert(b.begin() + static_cast<ptrdiff_t>(below(b.size() + 1)), token.begin(),
                         token.end());
                break;
            }
        }
    }

    std::mt19937_64 rng_;
};

struct ReplayCounts {
    int seeds = 0;
    int runs = 0;
};

// Runs `entry` on each seed, on every truncation of the seeds up to 2 KiB, and on `mutations`
// mutated seeds. Each input is a buffer of its exact size, as libFuzzer passes it.
ReplayCounts replay(Entry entry, const std::vector<Seed>& seeds, uint64_t rngSeed, int mutations) {
    ReplayCounts counts;
    auto run = [&](const Bytes& input) {
        const Bytes exact(input);  // no spare capacity past the end
        if (entry(exact.empty() ? nullptr : exact.data(), exact.size()) != 0)
            qFatal("a fuzz target returned non-zero");
        ++counts.runs;
    };
    for (const Seed& seed : seeds) {
        run(seed.bytes);
        ++counts.seeds;
        if (seed.bytes.size() <= 2048) {
            for (size_t n = 0; n < seed.bytes.size(); ++n)
                run(Bytes(seed.bytes.begin(), seed.bytes.begin() + static_cast<ptrdiff_t>(n)));
        }
    }
    Mutator mutator(rngSeed);
    Bytes current;
    for (int i = 0; i < mutations; ++i) {
        // Mostly mutate a seed; sometimes keep mutating the previous input (deeper changes).
        if (current.empty() || mutator.below(4) != 0)
            current = seeds[mutator.below(seeds.size())].bytes;
        current = mutator.mutate(current, seeds);
        run(current);
    }
    return counts;
}

std::string_view text(const Bytes& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

class TestFuzzReplay : public QObject {
    Q_OBJECT

  private slots:
    void seedsAreWhatTheirNamesSay();
    void replayJson();
    void replaySafetensors();
    void replayModelConfig();
};

void TestFuzzReplay::seedsAreWhatTheirNamesSay() {
    int valid = 0, invalid = 0;
    auto expect = [&](const Seed& seed, bool ok, const std::string& error) {
        if (seed.name.startsWith(QLatin1String("valid-"))) {
            QVERIFY2(ok,
                     qPrintable(seed.name + QStringLiteral(": ") + QString::fromStdString(error)));
            ++valid;
        } else {
            QVERIFY2(seed.name.startsWith(QLatin1String("invalid-")), qPrintable(seed.name));
            QVERIFY2(!ok, qPrintable(seed.name));
            ++invalid;
        }
    };
    for (const Seed& seed : loadSeeds(QStringLiteral("json"))) {
        auto r = folio::inference::parseJson(text(seed.bytes));
        expect(seed, r.ok(), r.ok() ? "" : r.error().message);
    }
    for (const Seed& seed : loadSeeds(QStringLiteral("safetensors"))) {
        auto r = folio::inference::parseSafetensorsHeader(
            std::as_bytes(std::span<const uint8_t>(seed.bytes)));
        expect(seed, r.ok(), r.ok() ? "" : r.error().message);
    }
    for (const Seed& seed : loadSeeds(QStringLiteral("model_config"))) {
        auto r = folio::inference::parseModelConfig(text(seed.bytes));
        expect(seed, r.ok(), r.ok() ? "" : r.error().message);
    }
    QVERIFY(valid >= 10);
    QVERIFY(invalid >= 5);
}

void TestFuzzReplay::replayJson() {
    const auto seeds = loadSeeds(QStringLiteral("json"));
    QVERIFY(seeds.size() >= 5);
    const ReplayCounts counts = replay(folioFuzzJson, seeds, 0x6A736F6E, 5000);
    QCOMPARE(counts.seeds, int(seeds.size()));
    QVERIFY(counts.runs > 5000);
    qInfo("json: %d inputs", counts.runs);
}

void TestFuzzReplay::replaySafetensors() {
    const auto seeds = loadSeeds(QStringLiteral("safetensors"));
    QVERIFY(seeds.size() >= 5);
    const ReplayCounts counts = replay(folioFuzzSafetensors, seeds, 0x7361666574, 5000);
    QCOMPARE(counts.seeds, int(seeds.size()));
    QVERIFY(counts.runs > 5000);
    qInfo("safetensors: %d inputs", counts.runs);
}

void TestFuzzReplay::replayModelConfig() {
    const auto seeds = loadSeeds(QStringLiteral("model_config"));
    QVERIFY(seeds.size() >= 4);
    const ReplayCounts counts = replay(folioFuzzModelConfig, seeds, 0x636F6E666967, 5000);
    QCOMPARE(counts.seeds, int(seeds.size()));
    QVERIFY(counts.runs > 5000);
    qInfo("model_config: %d inputs", counts.runs);
}

QTEST_APPLESS_MAIN(TestFuzzReplay)
#include "test_fuzz_replay.moc"
