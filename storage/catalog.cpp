// SPDX-License-Identifier: GPL-3.0-or-later
#include "catalog.h"

#include <algorithm>
#include <chrono>

namespace folio::storage {

int64_t nowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

namespace {

SessionRow readSession(const Statement& st) {
    return {st.int64(0), st.text(1), st.int64(2), st.int64(3)};
}

constexpr const char* kSourceColumns =
    "id, session_id, position, enabled, kind, display_name, origin, content_hash, token_count, "
    "ingest_settings, added_at, title, page_count, file_count";

SourceRow readSource(const Statement& st) {
    SourceRow s;
    s.id = st.int64(0);
    s.sessionId = st.int64(1);
    s.position = st.int64(2);
    s.enabled = st.int64(3) != 0;
    s.kind = st.text(4);
    s.displayName = st.text(5);
    s.origin = st.text(6);
    s.contentHash = st.text(7);
    s.tokenCount = st.int64(8);
    s.ingestSettings = st.text(9);
    s.addedAt = st.int64(10);
    s.title = st.text(11);
    s.pageCount = st.int64(12);
    s.fileCount = st.int64(13);
    return s;
}

}  // namespace

Status Catalog::touch(int64_t sessionId) {
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("UPDATE sessions SET updated_at = ? WHERE id = ?"));
    st.bind(1, nowSeconds()).bind(2, sessionId);
    return st.run();
}

Result<SessionRow> Catalog::createSession(const std::string& name) {
    if (name.empty())
        return makeError(ErrorCode::InvalidArgument, "a session needs a name");
    const int64_t now = nowSeconds();
    FOLIO_ASSIGN_OR_RETURN(
        Statement st,
        db_.prepare("INSERT INTO sessions(name, created_at, updated_at) VALUES (?, ?, ?)"));
    st.bind(1, name).bind(2, now).bind(3, now);
    FOLIO_TRY(st.run());
    return SessionRow{db_.lastInsertId(), name, now, now};
}

Result<std::vector<SessionRow>> Catalog::sessions() {
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("SELECT id, name, created_at, updated_at FROM sessions "
                                       "ORDER BY updated_at DESC, id DESC"));
    std::vector<SessionRow> rows;
    while (true) {
        FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
        if (!row)
            return rows;
        rows.push_back(readSession(st));
    }
}

Result<SessionRow> Catalog::session(int64_t id) {
    FOLIO_ASSIGN_OR_RETURN(
        Statement st,
        db_.prepare("SELECT id, name, created_at, updated_at FROM sessions WHERE id = ?"));
    st.bind(1, id);
    FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row)
        return makeError(ErrorCode::NotFound, "session ", id, " does not exist");
    return readSession(st);
}

Status Catalog::renameSession(int64_t id, const std::string& name) {
    FOLIO_TRY(session(id));
    FOLIO_ASSIGN_OR_RETURN(Statement st, db_.prepare("UPDATE sessions SET name = ? WHERE id = ?"));
    st.bind(1, name).bind(2, id);
    return st.run();
}

Status Catalog::deleteSession(int64_t id) {
    FOLIO_TRY(session(id));
    FOLIO_ASSIGN_OR_RETURN(Statement st, db_.prepare("DELETE FROM sessions WHERE id = ?"));
    st.bind(1, id);
    return st.run();
}

Result<SourceRow> Catalog::addSource(SourceRow source, const std::string& text,
                                     const std::vector<SegmentRow>& segments) {
    FOLIO_TRY(session(source.sessionId));
    FOLIO_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(db_));
    FOLIO_ASSIGN_OR_RETURN(Statement count,
                           db_.prepare("SELECT COUNT(*) FROM sources WHERE session_id = ?"));
    count.bind(1, source.sessionId);
    FOLIO_TRY(count.step());
    source.position = count.int64(0);
    source.addedAt = nowSeconds();
    if (source.ingestSettings.empty())
        source.ingestSettings = "{}";
    FOLIO_ASSIGN_OR_RETURN(
        Statement insert,
        db_.prepare(
            "INSERT INTO sources(session_id, position, enabled, kind, display_name, "
            "origin, content_hash, token_count, ingest_settings, added_at, title, page_count, "
            "file_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    insert.bind(1, source.sessionId)
        .bind(2, source.position)
        .bind(3, int64_t{source.enabled ? 1 : 0})
        .bind(4, source.kind)
        .bind(5, source.displayName)
        .bind(6, source.origin)
        .bind(7, source.contentHash)
        .bind(8, source.tokenCount)
        .bind(9, source.ingestSettings)
        .bind(10, source.addedAt)
        .bind(11, source.title)
        .bind(12, source.pageCount)
        .bind(13, source.fileCount);
    FOLIO_TRY(insert.run());
    source.id = db_.lastInsertId();
    FOLIO_ASSIGN_OR_RETURN(Statement body,
                           db_.prepare("INSERT INTO source_texts(source_id, text) VALUES (?, ?)"));
    body.bind(1, source.id).bindBlob(2, text);
    FOLIO_TRY(body.run());
    FOLIO_ASSIGN_OR_RETURN(
        Statement seg,
        db_.prepare("INSERT INTO segments(source_id, ordinal, locator, char_begin, char_end, "
                    "token_begin, token_end) VALUES (?, ?, ?, ?, ?, ?, ?)"));
    for (const SegmentRow& s : segments) {
        FOLIO_TRY(seg.reset());
        seg.bind(1, source.id)
            .bind(2, s.ordinal)
            .bind(3, s.locator)
            .bind(4, s.charBegin)
            .bind(5, s.charEnd)
            .bind(6, s.tokenBegin)
            .bind(7, s.tokenEnd);
        FOLIO_TRY(seg.run());
    }
    FOLIO_TRY(touch(source.sessionId));
    FOLIO_TRY(tx.commit());
    return source;
}

Result<std::vector<SourceRow>> Catalog::sources(int64_t sessionId) {
    FOLIO_TRY(session(sessionId));
    FOLIO_ASSIGN_OR_RETURN(
        Statement st, db_.prepare(cat("SELECT ", kSourceColumns,
                                      " FROM sources WHERE session_id = ? ORDER BY position")));
    st.bind(1, sessionId);
    std::vector<SourceRow> rows;
    while (true) {
        FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
        if (!row)
            return rows;
        rows.push_back(readSource(st));
    }
}

Result<SourceRow> Catalog::source(int64_t sourceId) {
    FOLIO_ASSIGN_OR_RETURN(
        Statement st, db_.prepare(cat("SELECT ", kSourceColumns, " FROM sources WHERE id = ?")));
    st.bind(1, sourceId);
    FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row)
        return makeError(ErrorCode::NotFound, "source ", sourceId, " does not exist");
    return readSource(st);
}

Result<std::string> Catalog::sourceText(int64_t sourceId) {
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("SELECT text FROM source_texts WHERE source_id = ?"));
    st.bind(1, sourceId);
    FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row)
        return makeError(ErrorCode::NotFound, "source ", sourceId, " has no stored text");
    return st.text(0);
}

Result<std::vector<SegmentRow>> Catalog::segments(int64_t sourceId) {
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("SELECT ordinal, locator, char_begin, char_end, "
                                       "token_begin, token_end FROM segments WHERE source_id = ? "
                                       "ORDER BY ordinal"));
    st.bind(1, sourceId);
    std::vector<SegmentRow> rows;
    while (true) {
        FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
        if (!row)
            return rows;
        rows.push_back(
            {st.int64(0), st.text(1), st.int64(2), st.int64(3), st.int64(4), st.int64(5)});
    }
}

Status Catalog::setSourceEnabled(int64_t sourceId, bool enabled) {
    FOLIO_ASSIGN_OR_RETURN(SourceRow s, source(sourceId));
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("UPDATE sources SET enabled = ? WHERE id = ?"));
    st.bind(1, int64_t{enabled ? 1 : 0}).bind(2, sourceId);
    FOLIO_TRY(st.run());
    return touch(s.sessionId);
}

Status Catalog::setSourceTokenCount(int64_t sourceId, int64_t tokens) {
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("UPDATE sources SET token_count = ? WHERE id = ?"));
    st.bind(1, tokens).bind(2, sourceId);
    return st.run();
}

Status Catalog::moveSource(int64_t sourceId, int64_t position) {
    FOLIO_ASSIGN_OR_RETURN(SourceRow moving, source(sourceId));
    FOLIO_ASSIGN_OR_RETURN(std::vector<SourceRow> all, sources(moving.sessionId));
    FOLIO_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(db_));
    std::vector<int64_t> order;
    for (const SourceRow& s : all)
        if (s.id != sourceId)
            order.push_back(s.id);
    position = std::clamp<int64_t>(position, 0, static_cast<int64_t>(order.size()));
    order.insert(order.begin() + position, sourceId);
    FOLIO_ASSIGN_OR_RETURN(Statement st,
                           db_.prepare("UPDATE sources SET position = ? WHERE id = ?"));
    for (size_t i = 0; i < order.size(); ++i) {
        FOLIO_TRY(st.reset());
        st.bind(1, static_cast<int64_t>(i)).bind(2, order[i]);
        FOLIO_TRY(st.run());
    }
    FOLIO_TRY(touch(moving.sessionId));
    return tx.commit();
}

Status Catalog::removeSource(int64_t sourceId) {
    FOLIO_ASSIGN_OR_RETURN(SourceRow removed, source(sourceId));
    FOLIO_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(db_));
    FOLIO_ASSIGN_OR_RETURN(Statement del, db_.prepare("DELETE FROM sources WHERE id = ?"));
    del.bind(1, sourceId);
    FOLIO_TRY(del.run());
    FOLIO_ASSIGN_OR_RETURN(Statement shift,
                           db_.prepare("UPDATE sources SET position = position - 1 "
                                       "WHERE session_id = ? AND position > ?"));
    shift.bind(1, removed.sessionId).bind(2, removed.position);
    FOLIO_TRY(shift.run());
    FOLIO_TRY(touch(removed.sessionId));
    return tx.commit();
}

Result<MessageRow> Catalog::addMessage(MessageRow m) {
    FOLIO_TRY(session(m.sessionId));
    m.createdAt = nowSeconds();
    FOLIO_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(db_));
    FOLIO_ASSIGN_OR_RETURN(
        Statement st,
        db_.prepare("INSERT INTO messages(session_id, role, content, created_at, prompt_tokens, "
                    "reused_tokens, prefilled_tokens, generated_tokens, ttft_ms, "
                    "tokens_per_second) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st.bind(1, m.sessionId)
        .bind(2, m.role)
        .bind(3, m.content)
        .bind(4, m.createdAt)
        .bind(5, m.stats.promptTokens)
        .bind(6, m.stats.reusedTokens)
        .bind(7, m.stats.prefilledTokens)
        .bind(8, m.stats.generatedTokens)
        .bind(9, m.stats.timeToFirstTokenMs)
        .bind(10, m.stats.tokensPerSecond);
    FOLIO_TRY(st.run());
    m.id = db_.lastInsertId();
    FOLIO_TRY(touch(m.sessionId));
    FOLIO_TRY(tx.commit());
    return m;
}

Result<std::vector<MessageRow>> Catalog::messages(int64_t sessionId) {
    FOLIO_TRY(session(sessionId));
    FOLIO_ASSIGN_OR_RETURN(
        Statement st,
        db_.prepare("SELECT id, session_id, role, content, created_at, prompt_tokens, "
                    "reused_tokens, prefilled_tokens, generated_tokens, ttft_ms, "
                    "tokens_per_second FROM messages WHERE session_id = ? ORDER BY id"));
    st.bind(1, sessionId);
    std::vector<MessageRow> rows;
    while (true) {
        FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
        if (!row)
            return rows;
        MessageRow m;
        m.id = st.int64(0);
        m.sessionId = st.int64(1);
        m.role = st.text(2);
        m.content = st.text(3);
        m.createdAt = st.int64(4);
        m.stats = {st.int64(5), st.int64(6), st.int64(7), st.int64(8), st.real(9), st.real(10)};
        rows.push_back(std::move(m));
    }
}

}  // namespace folio::storage
