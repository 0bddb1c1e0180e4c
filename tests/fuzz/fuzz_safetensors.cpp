// SPDX-License-Identifier: GPL-3.0-or-later
// libFuzzer target for the safetensors header parser (parseSafetensorsHeader). The input is a
// whole file. Besides "no crash, no UB" it checks what an accepted header promises: the data area
// follows the header; every tensor's range has size = shape x dtype and lies inside the data
// area; the ranges tile the data area exactly. Then it reads every tensor through TensorView and
// convertToFloat, as the engine would, so that AddressSanitizer catches any read outside the
// input. Errors must carry a message.
// Built by tests/fuzz/CMakeLists.txt (clang, FOLIO_FUZZ=ON) and, with the entry point renamed
// through FOLIO_FUZZ_ENTRY, replayed by the CTest suite test_fuzz_replay.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "inference/safetensors.h"

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

using namespace folio::inference;

extern "C" int FOLIO_FUZZ_ENTRY(const uint8_t* data, size_t size) {
    const auto file = std::as_bytes(std::span<const uint8_t>(data, size));
    auto parsed = parseSafetensorsHeader(file);
    if (!parsed.ok()) {
        FUZZ_CHECK(parsed.error().code == folio::ErrorCode::Format);
        FUZZ_CHECK(!parsed.error().message.empty());
        return 0;
    }
    const SafetensorsHeader& header = parsed.value();
    FUZZ_CHECK(header.dataOffset >= 8 + 2);
    FUZZ_CHECK(header.dataOffset <= size);
    FUZZ_CHECK(header.dataOffset + header.dataSize == size);

    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const TensorInfo& t : header.tensors) {
        FUZZ_CHECK(!t.name.empty());
        FUZZ_CHECK(t.shape.size() <= 16);
        FUZZ_CHECK(t.begin <= t.end && t.end <= header.dataSize);
        uint64_t elements = 1;
        for (int64_t d : t.shape) {
            FUZZ_CHECK(d >= 0);
            elements *= static_cast<uint64_t>(d);  // bounded: checked against the range below
        }
        FUZZ_CHECK(elements == t.elementCount());
        FUZZ_CHECK(elements * dtypeSize(t.dtype) == t.end - t.begin);
        ranges.emplace_back(t.begin, t.end);
    }
    std::sort(ranges.begin(), ranges.end());
    uint64_t cursor = 0;
    for (const auto& [begin, end] : ranges) {
        FUZZ_CHECK(begin == cursor);
        cursor = end;
    }
    FUZZ_CHECK(cursor == header.dataSize);

    // Read every tensor the way the engine does; ASan reports any byte outside the input.
    float buffer[64];
    unsigned checksum = 0;
    for (const TensorInfo& t : header.tensors) {
        TensorView view;
        view.name = t.name;
        view.dtype = t.dtype;
        view.shape = t.shape;
        view.data = file.data() + header.dataOffset + t.begin;
        view.elements = t.elementCount();
        FUZZ_CHECK(!view.shapeString().empty());
        if (isFloatingWeightType(t.dtype)) {
            for (uint64_t first = 0; first < view.elements; first += 64) {
                const uint64_t count = std::min<uint64_t>(64, view.elements - first);
                convertToFloat(view, first, count, buffer);
                checksum += static_cast<unsigned>(buffer[0] == buffer[count - 1]);
            }
        } else {
            for (uint64_t i = 0; i < t.end - t.begin; ++i)
                checksum += static_cast<unsigned>(view.data[i]);
        }
    }
    volatile unsigned sink = checksum;
    (void)sink;
    return 0;
}
