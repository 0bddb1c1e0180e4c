// SPDX-License-Identifier: GPL-3.0-or-later
#include "checksum.h"

#include <array>
#include <cstring>

#include "checksum_detail.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define FOLIO_CRC32C_X86 1
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#define FOLIO_CRC32C_ARM 1
#endif

namespace folio::inference {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // CRC-32C, reflected

// The CRC register (no pre- or post-inversion) is linear over GF(2): feeding bytes from register
// r gives step(r, zeros) ^ step(0, bytes). The hardware paths exploit that to run three streams
// side by side: a block of 3 * kStream bytes is checksummed as three independent runs whose
// registers are then joined with shiftRegister (the effect of kStream zero bytes on a register).
constexpr size_t kStream = 8192;

using Tables = std::array<std::array<uint32_t, 256>, 8>;

Tables makeTables() {
    Tables t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
        t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
        for (size_t s = 1; s < 8; ++s)
            t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
    return t;
}

const Tables& tables() {
    static const Tables t = makeTables();
    return t;
}

// The register update over `n` bytes, slicing-by-8 (no inversion).
uint32_t portableRegister(uint32_t crc, const unsigned char* p, size_t n) {
    const Tables& t = tables();
    while (n >= 8) {
        uint32_t lo;
        uint32_t hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
              t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(FOLIO_CRC32C_X86) || defined(FOLIO_CRC32C_ARM)

// shiftRegister(r) = the register after kStream zero bytes fed from r, as four byte-indexed
// tables (the map is linear, so it is the XOR of its values on r's four bytes).
using ShiftTables = std::array<std::array<uint32_t, 256>, 4>;

ShiftTables makeShiftTables() {
    // The image of every single-bit register, by feeding zeros (done once, ~0.3 MB of work).
    static const std::array<unsigned char, kStream> zeros{};
    std::array<uint32_t, 32> basis{};
    for (int bit = 0; bit < 32; ++bit)
        basis[static_cast<size_t>(bit)] = portableRegister(1u << bit, zeros.data(), kStream);
    ShiftTables s{};
    for (size_t byte = 0; byte < 4; ++byte)
        for (uint32_t v = 0; v < 256; ++v) {
            uint32_t out = 0;
            for (int b = 0; b < 8; ++b)
                if (v & (1u << b))
                    out ^= basis[byte * 8 + static_cast<size_t>(b)];
            s[byte][v] = out;
        }
    return s;
}

const ShiftTables& shiftTables() {
    static const ShiftTables s = makeShiftTables();
    return s;
}

inline uint32_t shiftRegister(const ShiftTables& s, uint32_t r) {
    return s[0][r & 0xFF] ^ s[1][(r >> 8) & 0xFF] ^ s[2][(r >> 16) & 0xFF] ^ s[3][r >> 24];
}

#endif

#if defined(FOLIO_CRC32C_X86)

__attribute__((target("sse4.2"))) uint32_t hardwareRegister(uint32_t crc, const unsigned char* p,
                                                            size_t n) {
    while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
        crc = _mm_crc32_u8(crc, *p++);
        --n;
    }
    if (n >= 3 * kStream) {
        const ShiftTables& s = shiftTables();
        while (n >= 3 * kStream) {
            uint64_t c0 = crc, c1 = 0, c2 = 0;
            const unsigned char* a = p;
            const unsigned char* b = p + kStream;
            const unsigned char* c = p + 2 * kStream;
            for (size_t i = 0; i < kStream; i += 8) {
                uint64_t va;
                uint64_t vb;
                uint64_t vc;
                std::memcpy(&va, a + i, 8);
                std::memcpy(&vb, b + i, 8);
                std::memcpy(&vc, c + i, 8);
                c0 = _mm_crc32_u64(c0, va);
                c1 = _mm_crc32_u64(c1, vb);
                c2 = _mm_crc32_u64(c2, vc);
            }
            crc = shiftRegister(
                      s, shiftRegister(s, static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1)) ^
                  static_cast<uint32_t>(c2);
            p += 3 * kStream;
            n -= 3 * kStream;
        }
    }
    uint64_t c64 = crc;
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    crc = static_cast<uint32_t>(c64);
    while (n-- > 0)
        crc = _mm_crc32_u8(crc, *p++);
    return crc;
}

bool hardwareAvailable() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

#elif defined(FOLIO_CRC32C_ARM)

uint32_t hardwareRegister(uint32_t crc, const unsigned char* p, size_t n) {
    while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
        crc = __crc32cb(crc, *p++);
        --n;
    }
    if (n >= 3 * kStream) {
        const ShiftTables& s = shiftTables();
        while (n >= 3 * kStream) {
            uint32_t c0 = crc, c1 = 0, c2 = 0;
            const unsigned char* a = p;
            const unsigned char* b = p + kStream;
            const unsigned char* c = p + 2 * kStream;
            for (size_t i = 0; i < kStream; i += 8) {
                uint64_t va;
                uint64_t vb;
                uint64_t vc;
                std::memcpy(&va, a + i, 8);
                std::memcpy(&vb, b + i, 8);
                std::memcpy(&vc, c + i, 8);
                c0 = __crc32cd(c0, va);
                c1 = __crc32cd(c1, vb);
                c2 = __crc32cd(c2, vc);
            }
            crc = shiftRegister(s, shiftRegister(s, c0) ^ c1) ^ c2;
            p += 3 * kStream;
            n -= 3 * kStream;
        }
    }
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        crc = __crc32cd(crc, v);
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        crc = __crc32cb(crc, *p++);
    return crc;
}

bool hardwareAvailable() {
    return true;  // the compiler was told the CPU has the CRC32 instructions
}

#endif

using RegisterFn = uint32_t (*)(uint32_t, const unsigned char*, size_t);

RegisterFn chooseImplementation() {
#if defined(FOLIO_CRC32C_X86) || defined(FOLIO_CRC32C_ARM)
    if (hardwareAvailable()) {
        (void)shiftTables();  // built here, once, so that later calls never allocate or wait
        return hardwareRegister;
    }
#endif
    return portableRegister;
}

// Chosen once, on first use (thread-safe static initialisation).
RegisterFn chosen() {
    static const RegisterFn fn = chooseImplementation();
    return fn;
}

}  // namespace

namespace detail {

uint32_t crc32cPortable(uint32_t crc, std::span<const std::byte> bytes) {
    return ~portableRegister(~crc, reinterpret_cast<const unsigned char*>(bytes.data()),
                             bytes.size());
}

bool crc32cUsesHardware() {
    return chosen() != portableRegister;
}

}  // namespace detail

uint32_t crc32c(uint32_t crc, std::span<const std::byte> bytes) {
    return ~chosen()(~crc, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

uint64_t fnv1a64(std::string_view text, uint64_t seed) {
    uint64_t h = seed;
    for (char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

}  // namespace folio::inference
