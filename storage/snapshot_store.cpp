// SPDX-License-Identifier: GPL-3.0-or-later
#include "snapshot_store.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "catalog.h"

namespace folio::storage {
namespace {

constexpr const char* kColumns =
    "prefix_key, parent_key, model_id, tokenizer_id, token_begin, token_end, file, size_bytes, "
    "created_at, last_used";

SnapshotRecord readRecord(const Statement& st) {
    SnapshotRecord r;
    r.prefixKey = st.text(0);
    r.parentKey = st.isNull(1) ? std::string() : st.text(1);
    r.modelId = st.text(2);
    r.tokenizerId = st.text(3);
    r.tokenBegin = st.int64(4);
    r.tokenEnd = st.int64(5);
    r.file = st.text(6);
    r.sizeBytes = st.int64(7);
    r.createdAt = st.int64(8);
    r.lastUsed = st.int64(9);
    return r;
}

bool validKey(const std::string& key) {
    return !key.empty() && key.size() <= 128 && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '-' || c == '_';
    });
}

int64_t nowMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::open(Database& db,
                                                           const std::filesystem::path& dir,
                                                           SnapshotStoreOptions options) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return makeError(ErrorCode::Io, "cannot create ", dir.string(), ": ", ec.message());
    std::unique_ptr<SnapshotStore> store(new SnapshotStore(db, dir, options));
    FOLIO_TRY(store->recover());
    // Use stamps continue after the newest stored one, even within the same millisecond.
    FOLIO_ASSIGN_OR_RETURN(Statement newest,
                           db.prepare("SELECT COALESCE(MAX(last_used), 0) FROM snapshots"));
    FOLIO_TRY(newest.step());
    store->useCounter_ = newest.int64(0);
    return store;
}

int64_t SnapshotStore::nextUseStamp() {
    // Milliseconds since the epoch, but strictly increasing: two uses in the same millisecond
    // still order, so least-recently-used eviction never sees a tie between them.
    useCounter_ = std::max(nowMillis(), useCounter_ + 1);
    return useCounter_;
}

Status SnapshotStore::recover() {
    FOLIO_ASSIGN_OR_RETURN(std::vector<SnapshotRecord> rows, all());
    // Rows whose file is missing or not the registered size, and rows whose parent is gone.
    std::set<std::string> alive;
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.tokenEnd < b.tokenEnd; });
    std::vector<std::string> broken;
    for (const SnapshotRecord& r : rows) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(dir_ / r.file, ec);
        const bool fileOk = !ec && static_cast<int64_t>(size) == r.sizeBytes;
        const bool parentOk = r.parentKey.empty() || alive.contains(r.parentKey);
        if (fileOk && parentOk)
            alive.insert(r.prefixKey);
        else
            broken.push_back(r.prefixKey);
    }
    for (const std::string& key : broken) {
        FOLIO_ASSIGN_OR_RETURN(Statement st,
                               db_.prepare("DELETE FROM snapshots WHERE prefix_key = ?"));
        st.bind(1, key);
        FOLIO_TRY(st.run());
        ++recovery_.brokenRowsRemoved;
    }
    // Files nobody registered: temporaries of an interrupted write, or a file renamed into
    // place just before a crash kept its row from being inserted.
    std::set<std::string> registered;
    for (const SnapshotRecord& r : rows)
        if (alive.contains(r.prefixKey))
            registered.insert(r.file);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
        const std::string name = entry.path().filename().string();
        if (registered.contains(name))
            continue;
        const bool temporary = name.find(".tmp.") != std::string::npos;
        std::error_code rm;
        std::filesystem::remove(entry.path(), rm);
        if (!rm)
            ++(temporary ? recovery_.temporaryFilesRemoved : recovery_.orphanFilesRemoved);
    }
    if (ec)
        return makeError(ErrorCode::Io, "cannot list ", dir_.string(), ": ", ec.message());
    return {};
}

Result<SnapshotRecord> SnapshotStore::save(const SnapshotContent& content,
                                           const std::vector<std::string>& keep) {
    if (!validKey(content.prefixKey) ||
        (!content.parentKey.empty() && !validKey(content.parentKey)))
        return makeError(ErrorCode::InvalidArgument, "invalid snapshot key \"", content.prefixKey,
                         "\"");
    if (!content.parentKey.empty()) {
        FOLIO_ASSIGN_OR_RETURN(auto parent, find(content.parentKey));
        if (!parent)
            return makeError(ErrorCode::NotFound, "snapshot ", content.prefixKey,
                             " needs its parent ", content.parentKey, ", which is not stored");
        if (parent->tokenEnd != content.tokenBegin)
            return makeError(ErrorCode::InvalidArgument, "snapshot ", content.prefixKey,
                             " starts at token ", content.tokenBegin, " but its parent ends at ",
                             parent->tokenEnd);
    }
    SnapshotRecord r;
    r.prefixKey = content.prefixKey;
    r.parentKey = content.parentKey;
    r.modelId = content.identity.modelId;
    r.tokenizerId = content.identity.tokenizerId;
    r.tokenBegin = content.tokenBegin;
    r.tokenEnd = content.tokenBegin + static_cast<int64_t>(content.tokens.size());
    r.file = content.prefixKey + ".snap";
    r.createdAt = nowSeconds();
    r.lastUsed = nextUseStamp();
    FOLIO_ASSIGN_OR_RETURN(uint64_t size, writeSnapshotFile(dir_ / r.file, content));
    r.sizeBytes = static_cast<int64_t>(size);
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare(cat("INSERT OR REPLACE INTO snapshots(", kColumns,
                                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")));
    st.bind(1, r.prefixKey);
    if (r.parentKey.empty())
        st.bindNull(2);
    else
        st.bind(2, r.parentKey);
    st.bind(3, r.modelId)
        .bind(4, r.tokenizerId)
        .bind(5, r.tokenBegin)
        .bind(6, r.tokenEnd)
        .bind(7, r.file)
        .bind(8, r.sizeBytes)
        .bind(9, r.createdAt)
        .bind(10, r.lastUsed);
    if (auto status = st.run(); !status) {
        // The file without its row would be an orphan; remove it now rather than at next open.
        std::error_code ec;
        std::filesystem::remove(dir_ / r.file, ec);
        return status.error().withContext("registering snapshot " + r.prefixKey);
    }
    std::vector<std::string> spare = keep;
    spare.push_back(r.prefixKey);
    if (!r.parentKey.empty())
        spare.push_back(r.parentKey);
    FOLIO_TRY(evictToBudget(spare));
    return r;
}

Result<std::optional<SnapshotRecord>> SnapshotStore::find(const std::string& prefixKey) {
    FOLIO_ASSIGN_OR_RETURN(Statement st, db_.prepare(cat("SELECT ", kColumns,
                                                         " FROM snapshots WHERE prefix_key = ?")));
    st.bind(1, prefixKey);
    FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row)
        return std::optional<SnapshotRecord>();
    return std::optional<SnapshotRecord>(readRecord(st));
}

Result<std::vector<SnapshotRecord>> SnapshotStore::chain(const std::string& prefixKey) {
    std::vector<SnapshotRecord> links;
    std::string key = prefixKey;
    while (!key.empty()) {
        if (links.size() > 100000)
            return makeError(ErrorCode::Format, "snapshot chain of ", prefixKey, " has a cycle");
        FOLIO_ASSIGN_OR_RETURN(auto record, find(key));
        if (!record)
            return makeError(ErrorCode::NotFound, "snapshot ", key, " is not stored");
        key = record->parentKey;
        links.push_back(std::move(*record));
    }
    std::reverse(links.begin(), links.end());
    return links;
}

Result<RestoredState> SnapshotStore::restore(const std::string& prefixKey,
                                             const SnapshotIdentity& identity) {
    FOLIO_ASSIGN_OR_RETURN(std::vector<SnapshotRecord> links, chain(prefixKey));
    std::vector<std::filesystem::path> files;
    for (const SnapshotRecord& r : links)
        files.push_back(dir_ / r.file);
    int bad = -1;
    auto state = readSnapshotChain(files, identity, &bad);
    if (!state && state.error().code == ErrorCode::OutOfMemory)
        return state.error();  // no fault of the files: keep them
    if (!state) {
        const std::string culprit =
            bad >= 0 ? links[static_cast<size_t>(bad)].prefixKey : prefixKey;
        if (auto dropped = drop(culprit); !dropped)
            return dropped.error().withContext(state.error().message);
        Error error = state.error();
        error.message += "; the snapshot was dropped and will be recomputed";
        return error;
    }
    std::vector<std::string> keys;
    for (const SnapshotRecord& r : links)
        keys.push_back(r.prefixKey);
    FOLIO_TRY(touch(keys));
    return state;
}

Result<std::vector<std::string>> SnapshotStore::descendantsOf(const std::string& prefixKey) {
    std::vector<std::string> found{prefixKey};
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("SELECT prefix_key FROM snapshots WHERE parent_key = ?"));
    for (size_t i = 0; i < found.size(); ++i) {
        FOLIO_TRY(st.reset());
        st.bind(1, found[i]);
        while (true) {
            FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
            if (!row)
                break;
            found.push_back(st.text(0));
        }
    }
    return found;
}

Status SnapshotStore::drop(const std::string& prefixKey) {
    FOLIO_ASSIGN_OR_RETURN(std::vector<std::string> keys, descendantsOf(prefixKey));
    std::vector<std::string> files;
    {
        FOLIO_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(db_));
        FOLIO_ASSIGN_OR_RETURN(Statement get,
                               db_.prepare("SELECT file FROM snapshots WHERE prefix_key = ?"));
        FOLIO_ASSIGN_OR_RETURN(Statement del,
                               db_.prepare("DELETE FROM snapshots WHERE prefix_key = ?"));
        // Children first, so no row ever names a parent that is gone.
        for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
            FOLIO_TRY(get.reset());
            get.bind(1, *it);
            FOLIO_ASSIGN_OR_RETURN(bool row, get.step());
            if (row)
                files.push_back(get.text(0));
            FOLIO_TRY(del.reset());
            del.bind(1, *it);
            FOLIO_TRY(del.run());
        }
        FOLIO_TRY(tx.commit());
    }
    // Rows first, then files: a crash in between leaves orphan files, which open() removes.
    for (const std::string& file : files) {
        std::error_code ec;
        std::filesystem::remove(dir_ / file, ec);
    }
    return {};
}

Status SnapshotStore::touch(const std::vector<std::string>& prefixKeys) {
    const int64_t stamp = nextUseStamp();
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("UPDATE snapshots SET last_used = ? WHERE prefix_key = ?"));
    for (const std::string& key : prefixKeys) {
        FOLIO_TRY(st.reset());
        st.bind(1, stamp).bind(2, key);
        FOLIO_TRY(st.run());
    }
    return {};
}

Status SnapshotStore::evictToBudget(const std::vector<std::string>& keep) {
    FOLIO_ASSIGN_OR_RETURN(int64_t total, totalBytes());
    if (total <= options_.diskBudgetBytes)
        return {};
    // Least recently used first; among equals the deepest (a child before its parent).
    FOLIO_ASSIGN_OR_RETURN(Statement st, db_.prepare("SELECT prefix_key FROM snapshots "
                                                     "ORDER BY last_used ASC, token_end DESC"));
    std::vector<std::string> order;
    while (true) {
        FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
        if (!row)
            break;
        order.push_back(st.text(0));
    }
    const std::set<std::string> spare(keep.begin(), keep.end());
    for (const std::string& key : order) {
        if (total <= options_.diskBudgetBytes)
            break;
        if (spare.contains(key))
            continue;
        FOLIO_ASSIGN_OR_RETURN(auto record, find(key));
        if (!record)
            continue;  // already dropped as a descendant
        FOLIO_ASSIGN_OR_RETURN(std::vector<std::string> family, descendantsOf(key));
        if (std::any_of(family.begin(), family.end(),
                        [&](const std::string& k) { return spare.contains(k); }))
            continue;  // evicting it would break a chain that must stay
        FOLIO_TRY(drop(key));
        FOLIO_ASSIGN_OR_RETURN(total, totalBytes());
    }
    return {};
}

Result<std::vector<SnapshotRecord>> SnapshotStore::all() {
    FOLIO_ASSIGN_OR_RETURN(Statement st, db_.prepare(cat("SELECT ", kColumns, " FROM snapshots")));
    std::vector<SnapshotRecord> rows;
    while (true) {
        FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
        if (!row)
            return rows;
        rows.push_back(readRecord(st));
    }
}

Result<int64_t> SnapshotStore::totalBytes() {
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("SELECT COALESCE(SUM(size_bytes), 0) FROM snapshots"));
    FOLIO_TRY(st.step());
    return st.int64(0);
}

}  // namespace folio::storage
