// The per-process registry of connection pools: the one documented singleton of
// a dbsupervisor process. instance() uses double-checked locking (an acquire
// load, then a mutex around construction and a release store); the object is
// never destroyed, so thread-local sessions may outlive main().
//
// Pools are built lazily, one per configured database, on first use. session()
// returns the calling thread's Session for a database (thread-local, rolled back
// and released when the thread ends). Fork safety: the manager remembers the pid
// that built its pools; used from another pid (fork without exec), it forgets
// the inherited pools without closing their sockets and builds new ones.
//
// Thread-safety: every public member may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "config/config.hpp"
#include "shared/db/async_session.hpp"
#include "shared/db/connection_pool.hpp"
#include "shared/db/session.hpp"



namespace dbsup {

class DatabaseManager {
public:
    static DatabaseManager& instance();
    /// How many managers were ever constructed in this process (at most one).
    static std::uint64_t instances_built() noexcept;

    /// Sets the databases this process may use; pools are opened on first use.
    /// application_name is shown by PostgreSQL (e.g. "dbsupervisor/3").
    /// observer, when given, is told of every statement and transaction of the
    /// sessions made from now on; it must outlive them (until close_worker()).
    /// @throws ConfigError when a password cannot be resolved.
    /// breaker: each pool's circuit breaker ([resilience]); off when not given.
    /// statement_cache_size: prepared statements kept per connection ([monitoring]).
    void init_worker(const std::map<std::string, DatabaseConfig>& databases,
                     std::string application_name, QueryObserver* observer = nullptr,
                     const CircuitBreakerConfig& breaker = {.window = 0},
                     std::size_t statement_cache_size = 100);
    /// Closes idle connections and forgets every pool (sessions still holding a
    /// pool keep it alive until they end).
    void close_worker() noexcept;

    /// The calling thread's session for `name`. @throws Error(usage) for an unknown name.
    Session& session(std::string_view name);
    /// The pool for `name`, built on first use. @throws Error(usage)
    std::shared_ptr<ConnectionPool> pool(std::string_view name);
    /// A session on a connection of its own (a pool of one, outside the
    /// shared pools and their stats), for work that must never wait behind the
    /// pool's other holders: the queue's lease renewal. The caller owns it.
    /// statement_timeout_ms > 0 bounds its statements tighter than the
    /// database's own setting (the dashboard's reads). @throws Error(usage) for an unknown name.
    std::unique_ptr<Session> dedicated_session(std::string_view name, const std::string& holder,
                                               std::int64_t statement_timeout_ms = 0);

    /// Scoped auto-commit call: f(Session&) in a transaction on `name`.
    template <class F>
    decltype(auto) transact(std::string_view name, F&& f) {
        return session(name).transact(std::forward<F>(f));
    }
    /// Handler injection: f receives the ready thread-local session for `name`.
    template <class F>
    decltype(auto) with_session(std::string_view name, F&& f) {
        return std::forward<F>(f)(session(name));
    }

    /// The async side (DESIGN section 5). The async pool for `name` on
    /// `executor`'s io_context (one per database per event loop, built on
    /// first use and dropped with that io_context or by close_worker()).
    /// @throws Error(usage) for an unknown name.
    std::shared_ptr<AsyncPool> async_pool(const std::string& name,
                                          const boost::asio::any_io_executor& executor);
    /// A new session on `name`'s async pool of the calling coroutine's event loop.
    Awaitable<AsyncSession> async_session(std::string name);
    /// Scoped auto-commit call for coroutines: co_await f(AsyncSession&) in a
    /// transaction on `name`, committed when f returns, rolled back when it
    /// throws (or is cancelled). At `deadline` a running statement is
    /// cancelled on the server and the call fails with Error(timeout).
    template <class F>
    Awaitable<void> async_transact(std::string name, F f,
                                   std::optional<AsyncSession::Clock::time_point> deadline = {}) {
        AsyncSession session = co_await async_session(std::move(name));
        co_await session.transact(std::move(f), deadline);
    }

    /// Every pool's figures, the async ones' named "<name>/async" (their
    /// leaks are looked for here).
    std::vector<PoolStats> pool_stats() const;
    /// Bumped whenever pools are dropped (init, close, fork); sessions of an older
    /// generation are discarded.
    std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

private:
    DatabaseManager();
    void check_fork();
    /// `size` > 0 overrides the configured pool size (and allows no overflow);
    /// statement_timeout_ms > 0 a longer (or no) configured statement timeout.
    std::shared_ptr<ConnectionPool> build_pool(const std::string& name, std::size_t size = 0,
                                               std::int64_t statement_timeout_ms = 0);

    std::shared_ptr<AsyncPool> build_async_pool(const std::string& name);

    mutable std::mutex mutex_;
    std::atomic<pid_t> owner_pid_;
    std::atomic<std::uint64_t> generation_{1};
    std::map<std::string, DatabaseConfig, std::less<>> databases_;
    std::map<std::string, std::shared_ptr<ConnectionPool>, std::less<>> pools_;
    std::vector<std::weak_ptr<AsyncPool>> async_pools_;  // for pool_stats(); owned by AsyncPools
    std::string application_name_ = "dbsupervisor";
    std::atomic<QueryObserver*> observer_{nullptr};
    CircuitBreakerConfig breaker_{.window = 0};
    std::size_t statement_cache_size_ = 100;

    static std::atomic<DatabaseManager*> instance_;
    static std::mutex instance_mutex_;
    static std::atomic<std::uint64_t> instances_built_;
};

}  // namespace dbsup
