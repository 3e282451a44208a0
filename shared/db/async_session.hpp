// A unit of work on one database for coroutines: the async twin of Session
// (the original design's get_async_db_session()). The first statement checks
// a connection out of the AsyncPool and begins the transaction ("autobegin"),
// so a coroutine that waits before its first statement holds no connection;
// commit() or rollback() ends it and gives the connection back. Statements
// are tracked under their QueryLabel by the worker's QueryObserver and report
// to the database's circuit breaker, as on the sync side.
//
// Several coroutines may await statements of one session at once: they share
// its connection, pipelined on PostgreSQL (AsyncPgConnection).
//
// A session abandoned with its transaction open (its coroutine cancelled or
// destroyed) gives its connection back to be closed: the server rolls back.
//
// Thread-safety: a session belongs to its event loop's thread.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "shared/db/async_pool.hpp"
#include "shared/monitoring/query_observer.hpp"

namespace dbsup {

class AsyncSession {
public:
    using Clock = AsyncConnection::Clock;

    AsyncSession(std::shared_ptr<AsyncPool> pool, std::string holder,
                 QueryObserver* observer = nullptr);
    ~AsyncSession();
    AsyncSession(AsyncSession&&) noexcept;
    AsyncSession& operator=(AsyncSession&&) = delete;

    /// Runs one statement ($1..$n bound from params) in the current
    /// transaction, beginning one if none is open. @throws Error
    Awaitable<Result> execute(const QueryLabel& label, std::string_view sql,
                              const Params& params = {});
    /// The same, labelled by the statement's kind ("select:-:sql", ...).
    Awaitable<Result> execute(std::string_view sql, const Params& params = {});
    /// Statements whose rows nobody reads, in order, in one round trip on
    /// PostgreSQL; each counted under its own label. @throws Error
    Awaitable<void> execute_all(const std::vector<PendingStatement>& statements);
    /// `first` (rows unread), then one statement whose result is returned, in
    /// one round trip: work and its bookkeeping sent together. @throws Error
    Awaitable<Result> execute_after(const std::vector<PendingStatement>& first,
                                    const QueryLabel& label, std::string_view sql,
                                    const Params& params);

    /// Opens a transaction; its connection is checked out by the first
    /// statement, waiting no longer than pool_timeout or the deadline. At the
    /// deadline a running statement is cancelled on the server (Error(timeout)).
    /// @throws Error(usage) when one is open, Error(timeout) when the deadline passed.
    void begin(std::optional<Clock::time_point> deadline = std::nullopt,
               Connection::BeginMode mode = Connection::BeginMode::deferred);
    /// Commits and gives the connection back; nothing to commit is not an
    /// error. @throws Error when COMMIT fails (the work is rolled back).
    Awaitable<void> commit();
    /// `last` (rows unread), then COMMIT, in one round trip on PostgreSQL: a
    /// unit of work whose last statements decide whether it may commit (one
    /// that fails rolls everything back). @throws Error, the work rolled back
    Awaitable<void> commit_after(const std::vector<PendingStatement>& last);
    /// Rolls back and gives the connection back. Never throws.
    Awaitable<void> rollback();
    bool in_transaction() const noexcept { return began_ || lease_; }
    /// Cancels the statement this session's transaction runs now, on the
    /// server (AsyncConnection::cancel): an operator's cancel of a job.
    /// False when none was running.
    bool cancel() noexcept { return lease_ && lease_->cancel(); }

    /// Runs co_await f(*this) in a new transaction: commits when it returns
    /// (a failed commit throws), rolls back and rethrows when it throws.
    template <class F>
    Awaitable<void> transact(F f, std::optional<Clock::time_point> deadline = std::nullopt);

    Backend backend() const noexcept { return pool_->options().backend; }
    AsyncPool& pool() const noexcept { return *pool_; }

private:
    /// The transaction's connection, checked out (once, however many
    /// coroutines ask at once) and begun on first use.
    Awaitable<AsyncConnection*> connection();
    /// Ends the transaction's bookkeeping; the lease goes back with `lease`.
    void end_transaction(bool committed) noexcept;
    void track(const QueryLabel& label, std::string_view sql, Clock::time_point started,
               const Error* error) noexcept;
    /// Each of `statements` succeeded, sharing the time since `started` (plus `extra`, if given).
    void track_all(const std::vector<PendingStatement>& statements, Clock::time_point started,
                   const PendingStatement* extra = nullptr) noexcept;

    std::shared_ptr<AsyncPool> pool_;
    std::string holder_;
    QueryObserver* observer_;
    AsyncLease lease_;
    bool began_ = false;  // begin() called; the lease comes with the first statement
    std::optional<Clock::time_point> deadline_;
    Connection::BeginMode mode_ = Connection::BeginMode::deferred;
    Clock::time_point began_at_{};
    struct CheckingOut;  // a checkout under way: others wait on it
    std::shared_ptr<CheckingOut> checking_out_;
};

template <class F>
Awaitable<void> AsyncSession::transact(F f, std::optional<Clock::time_point> deadline) {
    begin(deadline);
    std::exception_ptr failure;
    try {
        co_await f(*this);
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        co_await rollback();
        std::rethrow_exception(failure);
    }
    co_await commit();
}

}  // namespace dbsup
