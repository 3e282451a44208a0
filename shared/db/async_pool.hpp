// A bounded pool of AsyncConnections to one database for one event loop: the
// async twin of ConnectionPool, with its options (pool_size, max_overflow,
// pool_timeout_ms, pre_ping, recycle_s, leak detection), its PoolStats and its
// timeout error. Waiting for a connection suspends the coroutine, never the
// thread. The database's circuit breaker is the sync pool's: one per database
// per process, whichever side meets the failures.
//
// Thread-safety: acquire() and leases belong to the event loop's one thread;
// stats() and check_leaks() may be called from any thread.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shared/db/async_lease.hpp"
#include "shared/db/connection_pool.hpp"
#include "shared/db/pool_options.hpp"

namespace dbsup {

class AsyncPool {
public:
    using Clock = AsyncConnection::Clock;
    using Factory = std::function<Awaitable<std::unique_ptr<AsyncConnection>>()>;

    /// `breaker_owner`: the database's sync pool, whose breaker this pool shares
    /// (it opens no connection for that). Stats are named "<name>/async".
    AsyncPool(PoolOptions options, std::shared_ptr<ConnectionPool> breaker_owner, Factory factory);
    ~AsyncPool();
    AsyncPool(const AsyncPool&) = delete;
    AsyncPool& operator=(const AsyncPool&) = delete;

    /// Checks a connection out for `holder`, waiting up to pool_timeout or
    /// the deadline, whichever comes first.
    /// @throws Error(pool_timeout) with the pool's figures, Error(connection_failed),
    /// Error(circuit_open).
    Awaitable<AsyncLease> acquire(std::string_view holder,
                                  Clock::time_point deadline = Clock::time_point::max());
    PoolStats stats() const;
    /// Logs (once each) connections held longer than leak_detection; returns how many.
    std::size_t check_leaks();
    CircuitBreaker& breaker() noexcept { return breaker_owner_->breaker(); }
    const PoolOptions& options() const noexcept { return options_; }

private:
    friend class AsyncLease;
    struct Waiter;

    void give_back(std::unique_ptr<AsyncConnection> connection) noexcept;
    /// An idle connection, or nullptr with room reserved to open one; waits when neither.
    Awaitable<std::unique_ptr<AsyncConnection>> take_idle_or_reserve(Clock::time_point deadline);
    Awaitable<std::unique_ptr<AsyncConnection>> open_reserved();
    Awaitable<std::unique_ptr<AsyncConnection>> make_ready(std::unique_ptr<AsyncConnection> c);
    AsyncLease checked_out(std::unique_ptr<AsyncConnection> connection, std::string_view holder);
    void unreserve() noexcept;
    void count_closed(std::uint64_t PoolStats::*reason) noexcept;

    const PoolOptions options_;
    const std::shared_ptr<ConnectionPool> breaker_owner_;
    const Factory factory_;

    mutable std::mutex mutex_;  // for stats() from other threads; never held across an await
    std::vector<std::unique_ptr<AsyncConnection>> idle_;  // LIFO
    std::vector<AsyncConnection*> in_use_;
    std::size_t open_ = 0;  // idle + in use + being opened
    std::deque<std::shared_ptr<Waiter>> waiters_;
    PoolStats counters_;
    ShmHistogram wait_{};
};

}  // namespace dbsup
