// SPDX-License-Identifier: GPL-3.0-or-later
// CRC-32C: known vectors, the hardware path against the portable one and against a bit-at-a-time
// reference over every length 0..1024 at unaligned starts and over lengths around the
// three-stream block size, and streaming splits equal to one-shot.
#include <QtTest>

#include <random>
#include <string_view>
#include <vector>

#include "inference/checksum.h"
#include "inference/checksum_detail.h"

using namespace folio::inference;

namespace {

std::span<const std::byte> bytesOf(std::string_view s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

// The definition, one bit at a time: independent of both implementations' tables.
uint32_t bitwise(std::span<const std::byte> bytes) {
    uint32_t crc = 0xFFFFFFFFu;
    for (std::byte b : bytes) {
        crc ^= static_cast<uint8_t>(b);
        for (int k = 0; k < 8; ++k)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

std::vector<std::byte> randomBytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::byte> v(n);
    for (auto& b : v)
        b = static_cast<std::byte>(rng() & 0xFF);
    return v;
}

}  // namespace

class ChecksumTest : public QObject {
    Q_OBJECT

  private slots:
    void knownVectors() {
        qInfo("crc32c uses %s",
              detail::crc32cUsesHardware() ? "the CPU's CRC instructions" : "the portable tables");
        QCOMPARE(crc32c(0, {}), 0u);
        QCOMPARE(crc32c(0, bytesOf("123456789")), 0xE3069283u);
        QCOMPARE(detail::crc32cPortable(0, bytesOf("123456789")), 0xE3069283u);
        QCOMPARE(crc32c(0, bytesOf("a")), 0xC1D04330u);
        // RFC 3720 (iSCSI), appendix B.4.
        std::vector<std::byte> v(32, std::byte{0});
        QCOMPARE(crc32c(0, v), 0x8A9136AAu);
        std::fill(v.begin(), v.end(), std::byte{0xFF});
        QCOMPARE(crc32c(0, v), 0x62A8AB43u);
        for (size_t i = 0; i < 32; ++i)
            v[i] = static_cast<std::byte>(i);
        QCOMPARE(crc32c(0, v), 0x46DD794Eu);
        for (size_t i = 0; i < 32; ++i)
            v[i] = static_cast<std::byte>(31 - i);
        QCOMPARE(crc32c(0, v), 0x113FDB5Cu);
    }

    void everyShortLengthAndAlignment() {
        const std::vector<std::byte> data = randomBytes(1024 + 16, 1);
        for (size_t start = 0; start < 8; ++start)
            for (size_t n = 0; n <= 1024; ++n) {
                const auto s = std::span(data).subspan(start, n);
                const uint32_t expected = bitwise(s);
                if (crc32c(0, s) != expected || detail::crc32cPortable(0, s) != expected)
                    QFAIL(qPrintable(
                        QStringLiteral("mismatch at start %1, length %2").arg(start).arg(n)));
            }
    }

    void longBuffersAroundTheStreamBlocks() {
        // The hardware path checksums blocks of 3 x 8 KiB as three streams and joins them.
        const std::vector<std::byte> data = randomBytes((size_t{1} << 20) + 64, 2);
        const size_t block = 3 * 8192;
        for (size_t n : {block - 1, block, block + 1, 2 * block - 7, 2 * block + 9, 5 * block + 3,
                         size_t{1} << 20})
            for (size_t start : {size_t{0}, size_t{1}, size_t{3}, size_t{7}, size_t{8}}) {
                const auto s = std::span(data).subspan(start, n);
                QCOMPARE(crc32c(0, s), detail::crc32cPortable(0, s));
            }
        QCOMPARE(crc32c(0, std::span(data).first(block * 2)),
                 bitwise(std::span(data).first(block * 2)));
    }

    void randomBuffersHardwareEqualsPortable() {
        std::mt19937 rng(3);
        for (int i = 0; i < 200; ++i) {
            const size_t n = rng() % 200000;
            const std::vector<std::byte> data = randomBytes(n + 8, rng());
            const auto s = std::span(data).subspan(rng() % 8, n);
            const uint32_t seed = rng();
            QCOMPARE(crc32c(seed, s), detail::crc32cPortable(seed, s));
        }
    }

    void streamingEqualsOneShot() {
        const std::vector<std::byte> data = randomBytes(100000, 4);
        const uint32_t whole = crc32c(0, data);
        std::mt19937 rng(5);
        for (int trial = 0; trial < 50; ++trial) {
            uint32_t crc = 0, portable = 0;
            size_t at = 0;
            while (at < data.size()) {
                const size_t n = std::min<size_t>(data.size() - at, rng() % 30000);
                crc = crc32c(crc, std::span(data).subspan(at, n));
                portable = detail::crc32cPortable(portable, std::span(data).subspan(at, n));
                at += n;
            }
            QCOMPARE(crc, whole);
            QCOMPARE(portable, whole);
        }
        // Split at every position of a short buffer.
        const auto s = std::span(data).first(300);
        for (size_t cut = 0; cut <= s.size(); ++cut)
            QCOMPARE(crc32c(crc32c(0, s.first(cut)), s.subspan(cut)), crc32c(0, s));
    }
};

QTEST_APPLESS_MAIN(ChecksumTest)
#include "test_checksum.moc"
