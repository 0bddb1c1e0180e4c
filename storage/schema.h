// SPDX-License-Identifier: GPL-3.0-or-later
// The database schema and its forward migrations, versioned with PRAGMA user_version.
// Owns: the list of migrations (version N turns a version N-1 database into version N).
// Promises: migrate() brings any older database to kSchemaVersion, each step in one
// transaction (a failed step leaves the database at the previous version); a database from a
// newer Folio is refused with a clear message, never modified. Never drops user data.
#pragma once

#include <cstdint>

#include "inference/result.h"
#include "sqlite_db.h"

namespace folio::storage {

inline constexpr int64_t kSchemaVersion = 2;

Status migrate(Database& db);

}  // namespace folio::storage
