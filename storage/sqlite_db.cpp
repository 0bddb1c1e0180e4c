// SPDX-License-Identifier: GPL-3.0-or-later
#include "sqlite_db.h"

#include <sqlite3.h>

namespace folio::storage {

Error sqliteError(sqlite3* db, int rc, std::string_view what) {
    const int primary = rc & 0xff;
    ErrorCode code = ErrorCode::Io;
    std::string hint;
    switch (primary) {
        case SQLITE_FULL:
            hint = " (the disk is full)";
            break;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            hint = " (the database is in use by another process)";
            break;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            code = ErrorCode::Format;
            hint = " (the database file is damaged)";
            break;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISUSE:
        case SQLITE_RANGE:
            code = ErrorCode::InvalidArgument;
            break;
        case SQLITE_NOMEM:
            code = ErrorCode::OutOfMemory;
            break;
        default:
            break;
    }
    const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return makeError(code, what, ": ", message, hint);
}

Statement::Statement(sqlite3* db, sqlite3_stmt* stmt, std::string sql)
    : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(other.stmt_),
      sql_(std::move(other.sql_)),
      bindError_(other.bindError_) {
    other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        if (stmt_ != nullptr)
            sqlite3_finalize(stmt_);
        db_ = other.db_;
        stmt_ = other.stmt_;
        sql_ = std::move(other.sql_);
        bindError_ = other.bindError_;
        other.stmt_ = nullptr;
    }
    return *this;
}

Statement::~Statement() {
    if (stmt_ != nullptr)
        sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, int64_t value) {
    if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK)
        bindError_ = rc;
    return *this;
}

Statement& Statement::bind(int index, double value) {
    if (int rc = sqlite3_bind_double(stmt_, index, value); rc != SQLITE_OK)
        bindError_ = rc;
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    if (int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                     SQLITE_UTF8);
        rc != SQLITE_OK)
        bindError_ = rc;
    return *this;
}

Statement& Statement::bindBlob(int index, std::string_view bytes) {
    if (int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
        rc != SQLITE_OK)
        bindError_ = rc;
    return *this;
}

Statement& Statement::bindNull(int index) {
    if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK)
        bindError_ = rc;
    return *this;
}

Result<bool> Statement::step() {
    if (bindError_ != 0)
        return sqliteError(db_, bindError_, "binding a value of \"" + sql_ + "\"");
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    sqlite3_reset(stmt_);
    return sqliteError(db_, rc, "\"" + sql_ + "\"");
}

Status Statement::run() {
    while (true) {
        FOLIO_ASSIGN_OR_RETURN(bool row, step());
        if (!row)
            return {};
    }
}

Status Statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    bindError_ = 0;
    return {};
}

int64_t Statement::int64(int column) const {
    return sqlite3_column_int64(stmt_, column);
}
double Statement::real(int column) const {
    return sqlite3_column_double(stmt_, column);
}
bool Statement::isNull(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}
std::string Statement::text(int column) const {
    const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    return bytes == nullptr ? std::string() : std::string(bytes, static_cast<size_t>(size));
}

Result<std::unique_ptr<Database>> Database::open(const std::filesystem::path& path) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(
        path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
        nullptr);
    if (rc != SQLITE_OK) {
        Error error = sqliteError(db, rc, "cannot open the database " + path.string());
        sqlite3_close(db);
        return error;
    }
    std::unique_ptr<Database> database(new Database(db, path));
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 2000);
    // WAL: readers never block the writer and a crash never leaves a half-written page in the
    // main file. synchronous=NORMAL is durable across application crashes in WAL mode.
    FOLIO_ASSIGN_OR_RETURN(Statement mode, database->prepare("PRAGMA journal_mode=WAL"));
    FOLIO_ASSIGN_OR_RETURN(bool row, mode.step());
    if (!row || mode.text(0) != "wal")
        return makeError(ErrorCode::Io, "cannot switch ", path.string(), " to WAL mode");
    FOLIO_TRY(database->exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
    return database;
}

Database::~Database() {
    if (db_ != nullptr)
        sqlite3_close_v2(db_);
}

Status Database::exec(std::string_view sql) {
    char* message = nullptr;
    const std::string text(sql);
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        std::string what = message != nullptr ? message : sqlite3_errstr(rc);
        sqlite3_free(message);
        Error error = sqliteError(db_, rc, "\"" + text.substr(0, 80) + "\"");
        error.message = cat("\"", text.substr(0, 80), "\": ", what);
        return error;
    }
    return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc =
        sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK)
        return sqliteError(db_, rc, "preparing \"" + std::string(sql) + "\"");
    return Statement(db_, stmt, std::string(sql));
}

int64_t Database::lastInsertId() const {
    return sqlite3_last_insert_rowid(db_);
}
int64_t Database::changes() const {
    return sqlite3_changes64(db_);
}

Result<int64_t> Database::userVersion() {
    FOLIO_ASSIGN_OR_RETURN(Statement st, prepare("PRAGMA user_version"));
    FOLIO_ASSIGN_OR_RETURN(bool row, st.step());
    return row ? st.int64(0) : int64_t{0};
}

Status Database::setUserVersion(int64_t version) {
    return exec(cat("PRAGMA user_version=", version));
}

Result<Transaction> Transaction::begin(Database& db) {
    FOLIO_TRY(db.exec("BEGIN IMMEDIATE"));
    return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(other.db_) {
    other.db_ = nullptr;
}

Transaction::~Transaction() {
    if (db_ != nullptr)
        (void)db_->exec("ROLLBACK");
}

Status Transaction::commit() {
    Database* db = db_;
    db_ = nullptr;
    Status status = db->exec("COMMIT");
    if (!status)
        (void)db->exec("ROLLBACK");
    return status;
}

}  // namespace folio::storage
