// Real databases for tests: a fresh SQLite file in a temp dir, or the throwaway
// PostgreSQL that scripts/test starts (DBSUP_TEST_PG_URL). A PostgreSQL test
// without that server fails; it never skips.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "shared/db/connection_pool.hpp"

namespace dbsup::test {

/// pgbouncer: the same PostgreSQL through the PgBouncer that scripts/test starts in
/// transaction pooling mode (DBSUP_TEST_PGBOUNCER_URL), as pooler = "transaction".
enum class TestBackend { sqlite, postgresql, pgbouncer };

std::string backend_name(TestBackend backend);
/// PostgreSQL, directly or through PgBouncer.
inline bool is_postgres(TestBackend backend) { return backend != TestBackend::sqlite; }

/// A temporary directory removed with everything in it.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

/// Databases of one test: each SQLite one lives in this object's temp dir.
class TestDatabases {
public:
    /// A database config named `name` on the backend. @throws if PostgreSQL is not set up.
    DatabaseConfig config(TestBackend backend, const std::string& name = "main") const;
    std::shared_ptr<ConnectionPool> pool(TestBackend backend, PoolOptions options) const;
    /// The same database as a `[databases.NAME]` TOML section for a config file.
    std::string toml(TestBackend backend, const std::string& name = "main") const;
    /// Drops the queue's tables (PostgreSQL is shared by every test; a SQLite
    /// file is new anyway), so a test starts with an empty queue.
    void drop_queue_tables(TestBackend backend) const;
    /// A table name no other test uses.
    static std::string unique_table(const std::string& stem);
    const TempDir& dir() const { return dir_; }
    /// The variable's value. @throws std::runtime_error naming it when unset.
    static std::string required_env(const char* name);

private:
    TempDir dir_;
};

}  // namespace dbsup::test
