// SPDX-License-Identifier: GPL-3.0-or-later
#include "storage.h"

#include "schema.h"

namespace folio::storage {

Result<std::unique_ptr<Storage>> Storage::open(const StorageOptions& options) {
    if (options.dataDir.empty())
        return makeError(ErrorCode::InvalidArgument, "no data directory given");
    std::unique_ptr<Storage> s(new Storage());
    s->dataDir_ = options.dataDir;
    FOLIO_ASSIGN_OR_RETURN(s->lock_, DataDirLock::acquire(options.dataDir));
    FOLIO_ASSIGN_OR_RETURN(s->db_, Database::open(options.dataDir / "folio.db"));
    FOLIO_TRY(migrate(*s->db_));
    s->catalog_ = std::make_unique<Catalog>(*s->db_);
    FOLIO_ASSIGN_OR_RETURN(
        s->snapshots_,
        SnapshotStore::open(*s->db_, options.dataDir / "snapshots",
                            SnapshotStoreOptions{.diskBudgetBytes = options.diskBudgetBytes}));
    return s;
}

Storage::~Storage() {
    // Members die in reverse order of declaration: the store, the catalog, the database, and
    // the lock last.
}

}  // namespace folio::storage
