// The queue's tables, created and upgraded by numbered migrations, applied in
// one transaction and recorded in dbsup_schema. migrate() is idempotent and safe
// to run from several processes at once (PostgreSQL advisory lock, SQLite
// BEGIN IMMEDIATE); it refuses a database whose schema is newer than this binary.
#pragma once

#include <cstdint>

#include "shared/db/session.hpp"

namespace dbsup {

class QueueSchema {
public:
    /// The schema version this binary writes and understands.
    static std::int64_t latest_version() noexcept;
    /// Applies what is missing up to `up_to` (an older version only to test an
    /// upgrade); returns the version now in place.
    /// @throws Error(usage) when the database's schema is newer than latest_version().
    static std::int64_t migrate(Session& session, std::int64_t up_to = latest_version());
    /// The version in place, 0 when the queue tables do not exist.
    static std::int64_t current_version(Session& session);
};

}  // namespace dbsup
