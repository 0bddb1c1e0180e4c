// SPDX-License-Identifier: GPL-3.0-or-later
#include "schema.h"

namespace folio::storage {
namespace {

// Version 1 (Folio 0.1 development): sessions, sources with their text, and plain messages.
constexpr const char* kVersion1 = R"sql(
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE sources (
    id              INTEGER PRIMARY KEY,
    session_id      INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    kind            TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    origin          TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    token_count     INTEGER NOT NULL DEFAULT 0,
    ingest_settings TEXT NOT NULL DEFAULT '{}',
    added_at        INTEGER NOT NULL
);
CREATE INDEX sources_by_session ON sources(session_id, position);
CREATE TABLE source_texts (
    source_id INTEGER PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
    text      BLOB NOT NULL
);
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX messages_by_session ON messages(session_id, id);
)sql";

// Version 2: segments (locators with token ranges), document metadata of sources, answer
// statistics, the snapshot registry.
constexpr const char* kVersion2 = R"sql(
CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL,
    locator     TEXT NOT NULL,
    char_begin  INTEGER NOT NULL,
    char_end    INTEGER NOT NULL,
    token_begin INTEGER NOT NULL DEFAULT -1,
    token_end   INTEGER NOT NULL DEFAULT -1
);
CREATE INDEX segments_by_source ON segments(source_id, ordinal);
ALTER TABLE sources ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE sources ADD COLUMN page_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN file_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reused_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN prefilled_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN generated_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN ttft_ms REAL NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN tokens_per_second REAL NOT NULL DEFAULT 0;
CREATE TABLE snapshots (
    prefix_key   TEXT PRIMARY KEY,
    parent_key   TEXT,
    model_id     TEXT NOT NULL,
    tokenizer_id TEXT NOT NULL,
    token_begin  INTEGER NOT NULL,
    token_end    INTEGER NOT NULL,
    file         TEXT NOT NULL UNIQUE,
    size_bytes   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used    INTEGER NOT NULL
);
CREATE INDEX snapshots_by_use ON snapshots(last_used);
CREATE INDEX snapshots_by_parent ON snapshots(parent_key);
)sql";

constexpr const char* kMigrations[] = {kVersion1, kVersion2};
static_assert(std::size(kMigrations) == kSchemaVersion);

}  // namespace

Status migrate(Database& db) {
    FOLIO_ASSIGN_OR_RETURN(int64_t version, db.userVersion());
    if (version > kSchemaVersion)
        return makeError(ErrorCode::Unsupported, db.path().string(), " has schema version ",
                         version, ", newer than this Folio understands (", kSchemaVersion,
                         "); it was left untouched");
    for (int64_t next = version + 1; next <= kSchemaVersion; ++next) {
        FOLIO_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(db));
        if (auto status = db.exec(kMigrations[next - 1]); !status)
            return status.error().withContext(
                cat("migrating ", db.path().string(), " to schema version ", next));
        FOLIO_TRY(db.setUserVersion(next));
        FOLIO_TRY(tx.commit());
    }
    return {};
}

}  // namespace folio::storage
