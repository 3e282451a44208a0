#include "shared/db/engine.hpp"

#include "shared/db/async_pg_connection.hpp"
#include "shared/db/async_sqlite_connection.hpp"
#include "shared/db/postgres_connection.hpp"
#include "shared/db/result.hpp"
#include "shared/db/sqlite_connection.hpp"

namespace dbsup {
namespace {

// libpq keyword/value syntax: single quotes, with \ and ' escaped.
std::string quoted(const std::string& value) { return backslash_quoted(value, '\''); }

}  // namespace

Engine::Engine(DatabaseConfig config, std::optional<std::string> password,
               std::string application_name)
    : config_(std::move(config)) {
    if (config_.url.backend == Backend::postgresql)
        conninfo_ = postgres_conninfo(password, application_name);
}

std::string Engine::postgres_conninfo(const std::optional<std::string>& password,
                                      const std::string& application_name) const {
    const DatabaseUrl& url = config_.url;
    std::string info = "host=" + quoted(url.host) + " port=" + std::to_string(url.port) +
                       " dbname=" + quoted(url.dbname) +
                       " application_name=" + quoted(application_name);
    if (!url.user.empty()) info += " user=" + quoted(url.user);
    if (password) info += " password=" + quoted(*password);
    for (const auto& [name, value] : url.params) info += " " + name + "=" + quoted(value);
    // libpq waits forever for a host that drops packets; nothing of ours may.
    if (!url.params.contains("connect_timeout")) info += " connect_timeout=5";
    // PgBouncer refuses the options startup parameter; pooled connections send
    // the timeout with every BEGIN instead (PostgresConnection).
    if (config_.statement_timeout_ms > 0 && !config_.transaction_pooled())
        info += " options=" +
                quoted("-c statement_timeout=" + std::to_string(config_.statement_timeout_ms));
    return info;
}

std::unique_ptr<Connection> Engine::connect(std::size_t statement_cache_size) const {
    if (config_.url.backend == Backend::sqlite)
        return std::make_unique<SqliteConnection>(config_.name, config_.url.path, config_.sqlite,
                                                  statement_cache_size);
    return std::make_unique<PostgresConnection>(config_.name, conninfo_,
                                                postgres_settings(statement_cache_size));
}

PostgresSettings Engine::postgres_settings(std::size_t statement_cache_size) const {
    const bool pooled = config_.transaction_pooled();
    return {.statement_cache_size = pooled ? 0 : statement_cache_size,
            .transaction_pooled = pooled,
            .statement_timeout_ms = config_.statement_timeout_ms,
            .pooler_detected = pooler_detected_};
}

Awaitable<std::unique_ptr<AsyncConnection>> Engine::connect_async(
    std::size_t statement_cache_size,
    const std::shared_ptr<boost::asio::thread_pool>& sqlite_threads) const {
    if (config_.url.backend == Backend::postgresql)
        return AsyncPgConnection::open(config_.name, conninfo_,
                                       postgres_settings(statement_cache_size));
    return AsyncSqliteConnection::open(sqlite_threads,
                                       [this, statement_cache_size] { return connect(statement_cache_size); });
}

}  // namespace dbsup
