// One open database connection for coroutines (the async side of DESIGN
// section 5), of either backend. It lives on one event loop: every call must
// come from a coroutine running on the io_context it was opened on, which one
// thread runs. Several coroutines may await statements on one connection at
// once: PostgreSQL pipelines them (sent together, one round trip), SQLite
// queues them on the connection's strand. Errors are dbsup::Error; once one
// poisons the connection, broken() stays true and the pool discards it.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string_view>
#include <vector>

#include "shared/db/connection.hpp"

namespace dbsup {

template <class T>
using Awaitable = boost::asio::awaitable<T>;

class AsyncConnection {
public:
    using Clock = std::chrono::steady_clock;

    virtual ~AsyncConnection() = default;
    AsyncConnection(const AsyncConnection&) = delete;
    AsyncConnection& operator=(const AsyncConnection&) = delete;

    /// Runs one statement with $1..$n bound from params; sql and params must
    /// live until the call returns. @throws Error
    virtual Awaitable<Result> execute(std::string_view sql, const Params& params) = 0;
    /// Runs statements whose rows nobody reads, in order, in one round trip,
    /// and throws the first error. @throws Error
    virtual Awaitable<void> execute_all(const std::vector<PendingStatement>& statements) = 0;
    /// Runs `first` (rows unread), then sql, all in one round trip, and returns
    /// sql's result; the first error is thrown. @throws Error
    virtual Awaitable<Result> execute_after(const std::vector<PendingStatement>& first,
                                            std::string_view sql, const Params& params) = 0;
    /// Opens a transaction: BEGIN travels with the next statement (none is
    /// sent for a transaction without statements). Statements still running
    /// at `deadline` are cancelled on the server and fail with Error(timeout).
    /// @throws Error(usage) inside a transaction
    virtual void begin(Connection::BeginMode mode, Clock::time_point deadline) = 0;
    /// @throws Error when COMMIT fails (the transaction is then over)
    virtual Awaitable<void> commit() = 0;
    /// `last` (rows unread), then COMMIT, in one round trip; when one of them
    /// fails, the transaction is rolled back and its error thrown. @throws Error
    virtual Awaitable<void> commit_after(const std::vector<PendingStatement>& last) = 0;
    virtual Awaitable<void> rollback() = 0;
    /// A cheap round trip; false (and broken() true) when the connection is dead.
    virtual Awaitable<bool> ping() = 0;
    /// Cancels the statement running now, on the server (an operator's
    /// cancel): it fails, and a PostgreSQL connection is not reused. From the
    /// connection's event loop. False when none was running: nothing happens.
    virtual bool cancel() noexcept = 0;
    virtual bool broken() const noexcept = 0;
    virtual bool in_transaction() const noexcept = 0;
    virtual Backend backend() const noexcept = 0;
    virtual StatementCacheCounts take_statement_counts() noexcept = 0;

    /// What the pool keeps about the connection (AsyncPool only).
    Connection::PoolState pool_state;

protected:
    AsyncConnection() = default;
};

}  // namespace dbsup
