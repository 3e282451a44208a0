// Opens connections for one configured database. It holds the resolved password
// (if any) in memory only, inside the libpq connection string it builds, and
// never prints that string. Thread-safe: connect() only reads.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "shared/db/async_connection.hpp"
#include "shared/db/connection.hpp"
#include "shared/db/postgres_connection.hpp"

namespace boost::asio {
class thread_pool;
}

namespace dbsup {

class Engine {
public:
    /// application_name is what PostgreSQL shows in pg_stat_activity.
    Engine(DatabaseConfig config, std::optional<std::string> password,
           std::string application_name);

    /// Opens a new connection caching up to statement_cache_size prepared
    /// statements ([monitoring] statement_cache_size; 0: none). Behind a
    /// transaction pooler it caches none: a named statement lives on one server
    /// connection, and the next transaction may get another.
    /// @throws Error(connection_failed)
    std::unique_ptr<Connection> connect(std::size_t statement_cache_size = 100) const;

    /// The same for coroutines, on the caller's executor (PostgreSQL: raw
    /// libpq in pipeline mode; SQLite: the ordinary connection run on
    /// `sqlite_threads`). @throws Error(connection_failed)
    Awaitable<std::unique_ptr<AsyncConnection>> connect_async(
        std::size_t statement_cache_size,
        const std::shared_ptr<boost::asio::thread_pool>& sqlite_threads) const;

    const DatabaseConfig& config() const noexcept { return config_; }
    /// PostgreSQL: the libpq connection string, for a connection the pool does
    /// not manage (the supervisor's LISTEN). It holds the password: never log it.
    const std::string& conninfo() const noexcept { return conninfo_; }
    const std::string& name() const noexcept { return config_.name; }

private:
    PostgresSettings postgres_settings(std::size_t statement_cache_size) const;
    std::string postgres_conninfo(const std::optional<std::string>& password,
                                  const std::string& application_name) const;

    DatabaseConfig config_;
    /// Set by the first connection that meets an unconfigured transaction pooler.
    std::shared_ptr<std::atomic<bool>> pooler_detected_ = std::make_shared<std::atomic<bool>>(false);
    std::string conninfo_;  // PostgreSQL only; contains the password: never log it
};

}  // namespace dbsup
