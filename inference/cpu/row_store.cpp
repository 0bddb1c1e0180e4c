// SPDX-License-Identifier: GPL-3.0-or-later
#include "row_store.h"

#include <algorithm>
#include <cstring>

namespace folio::inference::cpu {

void RowStore::append(const float* data, int64_t count) {
    while (count > 0) {
        const int64_t inPage = rows_ % kRowsPerPage;
        if (inPage == 0) {
            pages_.push_back(std::make_shared<Page>(static_cast<size_t>(kRowsPerPage * width_)));
        } else if (pages_.back().use_count() > 1) {
            pages_.back() = std::make_shared<Page>(*pages_.back());  // copy on write
        }
        const int64_t n = std::min(count, kRowsPerPage - inPage);
        std::memcpy(pages_.back()->data() + inPage * width_, data,
                    static_cast<size_t>(n * width_) * sizeof(float));
        data += n * width_;
        count -= n;
        rows_ += n;
    }
}

void RowStore::truncate(int64_t length) {
    if (length >= rows_)
        return;
    rows_ = length;
    pages_.resize(static_cast<size_t>((length + kRowsPerPage - 1) / kRowsPerPage));
}

}  // namespace folio::inference::cpu
