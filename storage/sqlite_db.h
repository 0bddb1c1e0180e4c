// SPDX-License-Identifier: GPL-3.0-or-later
// A thin RAII layer over the sqlite3 C API: one connection, prepared statements, transactions.
//
// Why the sqlite3 API and not Qt SQL: we need exact control over the connection (WAL mode,
// synchronous level, busy timeout, PRAGMA user_version, explicit BEGIN IMMEDIATE transactions)
// and precise error codes (SQLITE_FULL, SQLITE_BUSY, SQLITE_CORRUPT) to turn into clear messages;
// QSqlDatabase hides those behind driver strings, ties a connection to the thread that made it
// and needs the QSQLITE plugin deployed next to the binary. libsqlite3 is one small, stable C
// library that the packaging already lists.
//
// Owns: the sqlite3 connection and its statements. Promises: every failure is an Error value
// whose message names the statement's purpose and SQLite's own message; a Transaction that is not
// committed rolls back. Never throws; never leaves a statement open after a Statement dies.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inference/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace folio::storage {

class Statement {
  public:
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;
    ~Statement();

    // Binding is 1-based, as in SQLite.
    Statement& bind(int index, int64_t value);
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view text);
    Statement& bindBlob(int index, std::string_view bytes);
    Statement& bindNull(int index);

    // Advances; true while a row is available, false when done.
    Result<bool> step();
    // Runs to completion (for statements that return no rows).
    Status run();
    Status reset();

    int64_t int64(int column) const;
    double real(int column) const;
    std::string text(int column) const;
    bool isNull(int column) const;

  private:
    friend class Database;
    Statement(sqlite3* db, sqlite3_stmt* stmt, std::string sql);
    sqlite3* db_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
    std::string sql_;
    int bindError_ = 0;
};

class Database {
  public:
    // Opens (creating if needed) a database file in WAL mode with foreign keys on.
    static Result<std::unique_ptr<Database>> open(const std::filesystem::path& path);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    Status exec(std::string_view sql);
    Result<Statement> prepare(std::string_view sql);
    int64_t lastInsertId() const;
    int64_t changes() const;

    Result<int64_t> userVersion();
    Status setUserVersion(int64_t version);

    const std::filesystem::path& path() const { return path_; }
    sqlite3* handle() { return db_; }

  private:
    Database(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
    sqlite3* db_ = nullptr;
    std::filesystem::path path_;
};

// BEGIN IMMEDIATE on construction (see begin()); ROLLBACK on destruction unless committed.
class Transaction {
  public:
    static Result<Transaction> begin(Database& db);
    Transaction(Transaction&& other) noexcept;
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    Status commit();

  private:
    explicit Transaction(Database* db) : db_(db) {}
    Database* db_ = nullptr;
};

// An Error from SQLite's result code and message, prefixed by `what`.
Error sqliteError(sqlite3* db, int rc, std::string_view what);

}  // namespace folio::storage
