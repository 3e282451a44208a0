#include "shared/db/pool_options.hpp"

namespace dbsup {

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

}  // namespace dbsup
