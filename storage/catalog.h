// SPDX-License-Identifier: GPL-3.0-or-later
// The catalog: sessions, their sources (ordered, enabled or not, with text and segments) and
// their messages (with answer statistics), as rows of the database.
// Owns: nothing but a reference to the Database. Promises: source positions within a session
// are always 0..n-1 without gaps (add, move and remove keep them so, in one transaction); every
// failure is an Error naming what was asked (e.g. "session 7 does not exist"). Never touches
// snapshot files (see snapshot_store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "inference/result.h"
#include "sqlite_db.h"

namespace folio::storage {

struct SessionRow {
    int64_t id = 0;
    std::string name;
    int64_t createdAt = 0;  // seconds since the epoch
    int64_t updatedAt = 0;
};

struct SourceRow {
    int64_t id = 0;
    int64_t sessionId = 0;
    int64_t position = 0;
    bool enabled = true;
    std::string kind;            // "text", "pdf", "repository", ...
    std::string displayName;     // shown in the UI and in the prompt's source header
    std::string origin;          // the path it came from
    std::string contentHash;     // hash of the file bytes and the ingest settings
    int64_t tokenCount = 0;      // tokens of its prompt block (0 until tokenized)
    std::string ingestSettings;  // JSON
    int64_t addedAt = 0;
    std::string title;      // PDF metadata title
    int64_t pageCount = 0;  // PDF pages
    int64_t fileCount = 0;  // files of a repository
};

// A locator (PDF page, file:line range) over a character range of the source's text; token
// ranges are filled in once the source is tokenized (-1 until then).
struct SegmentRow {
    int64_t ordinal = 0;
    std::string locator;
    int64_t charBegin = 0, charEnd = 0;
    int64_t tokenBegin = -1, tokenEnd = -1;
};

struct AnswerStats {
    int64_t promptTokens = 0;     // tokens in the context the answer was generated from
    int64_t reusedTokens = 0;     // restored from a snapshot (memory or disk), not prefilled
    int64_t prefilledTokens = 0;  // prefilled for this question (sources not cached + question)
    int64_t generatedTokens = 0;
    double timeToFirstTokenMs = 0;
    double tokensPerSecond = 0;  // decode speed
};

struct MessageRow {
    int64_t id = 0;
    int64_t sessionId = 0;
    std::string role;  // "user" or "assistant"
    std::string content;
    int64_t createdAt = 0;
    AnswerStats stats;  // assistant messages
};

class Catalog {
  public:
    explicit Catalog(Database& db) : db_(db) {}

    Result<SessionRow> createSession(const std::string& name);
    Result<std::vector<SessionRow>> sessions();
    Result<SessionRow> session(int64_t id);
    Status renameSession(int64_t id, const std::string& name);
    Status deleteSession(int64_t id);

    // Appends a source at the end of the session with its text and segments.
    Result<SourceRow> addSource(SourceRow source, const std::string& text,
                                const std::vector<SegmentRow>& segments);
    Result<std::vector<SourceRow>> sources(int64_t sessionId);
    Result<SourceRow> source(int64_t sourceId);
    Result<std::string> sourceText(int64_t sourceId);
    Result<std::vector<SegmentRow>> segments(int64_t sourceId);
    Status setSourceEnabled(int64_t sourceId, bool enabled);
    Status setSourceTokenCount(int64_t sourceId, int64_t tokens);
    // Moves a source to `position` (0-based, clamped), shifting the others.
    Status moveSource(int64_t sourceId, int64_t position);
    Status removeSource(int64_t sourceId);

    Result<MessageRow> addMessage(MessageRow message);
    Result<std::vector<MessageRow>> messages(int64_t sessionId);

  private:
    Status touch(int64_t sessionId);
    Database& db_;
};

int64_t nowSeconds();

}  // namespace folio::storage
