// SPDX-License-Identifier: GPL-3.0-or-later
// The snapshot store: snapshot files in DIR/snapshots/ and their registry rows in the database.
// Snapshots are keyed by prefix key (a hash of everything before the boundary), so any session
// whose prompt starts the same way reuses them.
//
// Owns: the snapshot folder and the snapshots table. Promises:
//   - a registry row exists only for a complete file (the file is renamed into place before the
//     row is inserted); open() removes temporary files, files without a row, rows without a
//     (complete) file and rows whose parent is gone, so a crash at any point leaves a consistent
//     store;
//   - restore() verifies every link of the chain; a damaged or missing link is dropped from the
//     registry together with everything that depends on it, and the error says so;
//   - after save() the files' total stays within the disk budget: the least recently used
//     snapshots (a child before its parent) are evicted, never those named in `keep`.
// Never trusts a file it has not verified. Used from one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inference/result.h"
#include "snapshot_file.h"
#include "sqlite_db.h"

namespace folio::storage {

struct SnapshotRecord {
    std::string prefixKey;
    std::string parentKey;  // "" for a root
    std::string modelId;
    std::string tokenizerId;
    int64_t tokenBegin = 0;
    int64_t tokenEnd = 0;
    std::string file;  // name inside the snapshot folder
    int64_t sizeBytes = 0;
    int64_t createdAt = 0;
    int64_t lastUsed = 0;
};

struct SnapshotStoreOptions {
    int64_t diskBudgetBytes = int64_t{64} << 30;
};

struct RecoveryReport {
    int temporaryFilesRemoved = 0;
    int orphanFilesRemoved = 0;
    int brokenRowsRemoved = 0;
};

class SnapshotStore {
  public:
    static Result<std::unique_ptr<SnapshotStore>> open(Database& db,
                                                       const std::filesystem::path& dir,
                                                       SnapshotStoreOptions options = {});

    // Writes the file, then registers it, then evicts down to the budget (sparing `keep`).
    Result<SnapshotRecord> save(const SnapshotContent& content,
                                const std::vector<std::string>& keep = {});

    Result<std::optional<SnapshotRecord>> find(const std::string& prefixKey);
    // The chain ending at `prefixKey`, root first; an error when a link is not registered.
    Result<std::vector<SnapshotRecord>> chain(const std::string& prefixKey);
    // Reads and verifies the chain ending at `prefixKey` and marks it used. A damaged link is
    // dropped (with its descendants) before the error is returned.
    Result<RestoredState> restore(const std::string& prefixKey, const SnapshotIdentity& identity);

    // Removes a snapshot, its descendants and their files.
    Status drop(const std::string& prefixKey);
    Status touch(const std::vector<std::string>& prefixKeys);
    Status evictToBudget(const std::vector<std::string>& keep = {});

    Result<std::vector<SnapshotRecord>> all();
    Result<int64_t> totalBytes();
    const RecoveryReport& recovery() const { return recovery_; }
    const std::filesystem::path& directory() const { return dir_; }
    std::filesystem::path pathOf(const SnapshotRecord& record) const { return dir_ / record.file; }
    void setDiskBudget(int64_t bytes) { options_.diskBudgetBytes = bytes; }

  private:
    SnapshotStore(Database& db, std::filesystem::path dir, SnapshotStoreOptions options)
        : db_(db), dir_(std::move(dir)), options_(options) {}
    Status recover();
    Result<std::vector<std::string>> descendantsOf(const std::string& prefixKey);
    int64_t nextUseStamp();

    Database& db_;
    std::filesystem::path dir_;
    SnapshotStoreOptions options_;
    RecoveryReport recovery_;
    int64_t useCounter_ = 0;
};

}  // namespace folio::storage
