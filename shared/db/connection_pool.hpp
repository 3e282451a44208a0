// A bounded pool of connections to one database (HikariCP/SQLAlchemy QueuePool
// semantics): `size` kept open, up to `max_overflow` more on demand and closed
// when returned, LIFO reuse, checkout timeout, pre-ping of connections idle for
// more than kPingIdle, jittered recycling, leak detection, rollback on return.
//
// Thread-safety: the only shared object of the database layer. acquire() and
// give_back() take the one mutex; opening, pinging and closing connections happen
// outside it. Checkout of an idle connection allocates nothing and makes no
// system call beyond an uncontended mutex.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "shared/db/connection.hpp"
#include "shared/db/connection_lease.hpp"
#include "shared/db/pool_options.hpp"
#include "shared/resilience/circuit_breaker.hpp"

namespace dbsup {

class ConnectionPool {
public:
    using Factory = std::function<std::unique_ptr<Connection>()>;
    /// A connection used more recently than this is handed out without a ping.
    static constexpr std::chrono::milliseconds kPingIdle{500};

    ConnectionPool(PoolOptions options, Factory factory);
    ~ConnectionPool();
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    /// Checks out a connection for `holder` (named in leak reports), waiting
    /// until pool_timeout or the caller's deadline, whichever comes first.
    /// @throws Error(pool_timeout) with the pool's figures, or Error(connection_failed).
    ConnectionLease acquire(std::string_view holder = "",
                            std::optional<Connection::Clock::time_point> deadline = std::nullopt);
    PoolStats stats() const;
    const PoolOptions& options() const noexcept { return options_; }
    /// The database's breaker in this process: checkouts pass it, statements report to it.
    CircuitBreaker& breaker() noexcept { return breaker_; }
    /// Logs (once each) connections held longer than leak_detection; returns how many.
    std::size_t check_leaks();
    /// In a child after fork(): forget every connection without closing its
    /// socket (the parent still uses it). Takes no lock: only one thread exists.
    void abandon() noexcept;

private:
    friend class ConnectionLease;
    using Clock = Connection::Clock;

    void give_back(std::unique_ptr<Connection> connection) noexcept;
    std::unique_ptr<Connection> take_idle_or_reserve(std::unique_lock<std::mutex>& lock,
                                                     std::optional<Clock::time_point> deadline);
    std::unique_ptr<Connection> open_reserved();
    std::unique_ptr<Connection> make_ready(std::unique_ptr<Connection> connection);
    void mark_checked_out(Connection& connection, std::string_view holder) noexcept;
    void unreserve() noexcept;
    [[noreturn]] void throw_timeout(std::chrono::nanoseconds waited);
    void leak_watch_loop();

    const PoolOptions options_;
    const Factory factory_;
    CircuitBreaker breaker_;

    mutable std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<Connection>> idle_;  // LIFO: back is the most recent
    std::vector<Connection*> in_use_;
    std::size_t open_ = 0;  // idle + in use + being opened
    PoolStats counters_;
    ShmHistogram wait_{};  // checkout waits (process memory; published by the worker)
    bool abandoned_ = false;
    bool stopping_ = false;
    std::unique_ptr<std::thread> leak_watcher_;
};

}  // namespace dbsup
