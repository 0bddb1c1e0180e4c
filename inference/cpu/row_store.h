// SPDX-License-Identifier: GPL-3.0-or-later
// An append-only table of fp32 rows of fixed width, stored in pages that copies share.
// Owns: its pages, jointly with its copies. Promises: a copy is cheap (pages are shared) and
// independent (appending to either never changes what the other reads: a shared page is copied
// before it is written). Rows never move while the store is alive.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace folio::inference::cpu {

class RowStore {
  public:
    static constexpr int64_t kRowsPerPage = 256;

    RowStore() = default;
    explicit RowStore(int64_t width) : width_(width) {}

    int64_t width() const { return width_; }
    int64_t rows() const { return rows_; }

    const float* row(int64_t i) const {
        return pages_[static_cast<size_t>(i / kRowsPerPage)]->data() + (i % kRowsPerPage) * width_;
    }

    // Appends `count` rows from `data` ([count, width]).
    void append(const float* data, int64_t count);

    // Drops rows at and after `length` (used to undo a failed append).
    void truncate(int64_t length);

  private:
    using Page = std::vector<float>;
    int64_t width_ = 0;
    int64_t rows_ = 0;
    std::vector<std::shared_ptr<Page>> pages_;
};

}  // namespace folio::inference::cpu
