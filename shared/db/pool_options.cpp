#include "shared/db/pool_options.hpp"

#include <random>

namespace dbsup {

std::chrono::steady_clock::duration jittered_lifetime(std::chrono::milliseconds lifetime) {
    thread_local std::minstd_rand random{std::random_device{}()};
    auto max_cut = lifetime.count() / 10;
    if (max_cut <= 0) return lifetime;
    std::uniform_int_distribution<std::int64_t> cut(0, max_cut);
    return std::chrono::milliseconds(lifetime.count() - cut(random));
}

PoolOptions PoolOptions::from_config(const DatabaseConfig& db,
                                     const CircuitBreakerConfig& breaker) {
    PoolOptions o;
    o.breaker = breaker;
    o.name = db.name;
    o.backend = db.url.backend;
    // 0 is "not resolved" (ConfigLoader::size_pools): the default job threads.
    o.size = static_cast<std::size_t>(db.pool_size > 0 ? db.pool_size : WorkerConfig{}.threads);
    o.max_overflow = static_cast<std::size_t>(db.max_overflow);
    o.timeout = std::chrono::milliseconds(db.pool_timeout_ms);
    o.pre_ping = db.pre_ping;
    o.recycle = std::chrono::seconds(db.recycle_s);
    o.leak_detection = std::chrono::milliseconds(db.leak_detection_ms);
    o.statement_timeout = std::chrono::milliseconds(db.statement_timeout_ms);
    // An in-memory SQLite database lives and dies with its one connection:
    // a second connection would see another, empty database.
    if (db.url.is_memory()) {
        o.size = 1;
        o.max_overflow = 0;
        o.recycle = std::chrono::milliseconds(0);
    }
    return o;
}

Error pool_timeout_error(const PoolOptions& options, std::chrono::nanoseconds waited,
                         std::size_t in_use, std::size_t idle, std::size_t waiting) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(waited).count();
    return Error(ErrorCode::pool_timeout,
                 "pool '" + options.name + "' timed out after " + std::to_string(ms) +
                     " ms waiting for a connection (pool_size " + std::to_string(options.size) +
                     ", max_overflow " + std::to_string(options.max_overflow) + ", in use " +
                     std::to_string(in_use) + ", idle " + std::to_string(idle) + ", waiting " +
                     std::to_string(waiting) +
                     "); raise pool_size or pool_timeout_ms, or hold connections for less time",
                 options.name);
}

}  // namespace dbsup
