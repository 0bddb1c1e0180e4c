// SPDX-License-Identifier: GPL-3.0-or-later
// Storage: a Folio data directory opened by one process.
//   DIR/folio.lock       the data directory lock (data_dir_lock.h)
//   DIR/folio.db         SQLite in WAL mode, migrated to the current schema (schema.h)
//   DIR/snapshots/       snapshot files (snapshot_file.h), registered in folio.db
// Owns: the lock, the database connection, the catalog and the snapshot store, in that order of
// life (the lock is taken before anything is read and released last). Promises: open() fails
// with a clear message when another process holds the directory, when the database is newer
// than this Folio, or when it cannot be read; it never modifies a directory it could not lock.
// Never used from two threads at once.
#pragma once

#include <filesystem>
#include <memory>

#include "catalog.h"
#include "data_dir_lock.h"
#include "inference/result.h"
#include "snapshot_store.h"
#include "sqlite_db.h"

namespace folio::storage {

struct StorageOptions {
    std::filesystem::path dataDir;
    int64_t diskBudgetBytes = int64_t{64} << 30;
};

class Storage {
  public:
    static Result<std::unique_ptr<Storage>> open(const StorageOptions& options);

    Catalog& catalog() { return *catalog_; }
    SnapshotStore& snapshots() { return *snapshots_; }
    Database& database() { return *db_; }
    const std::filesystem::path& dataDir() const { return dataDir_; }

  private:
    Storage() = default;
    std::filesystem::path dataDir_;
    std::unique_ptr<DataDirLock> lock_;
    std::unique_ptr<Database> db_;
    std::unique_ptr<Catalog> catalog_;
    std::unique_ptr<SnapshotStore> snapshots_;

  public:
    ~Storage();
};

}  // namespace folio::storage
