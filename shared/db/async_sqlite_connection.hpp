// An SQLite connection for coroutines (the aiosqlite model): the ordinary
// SqliteConnection, run on its pool's threads (one per connection the pool
// may open) through a strand of its own,
// so its statements run one at a time and off the event loop. The awaiting
// coroutine resumes on its own executor. BEGIN runs in the same hop as the
// transaction's first statement, and a deadline becomes the connection's
// progress-handler deadline (the statement fails with Error(timeout)).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <memory>

#include "shared/db/async_connection.hpp"

namespace dbsup {

class AsyncSqliteConnection final : public AsyncConnection {
public:
    /// Opens `open()`'s connection on one of `threads`, which the connection
    /// keeps alive. @throws Error(connection_failed)
    static Awaitable<std::unique_ptr<AsyncConnection>> open(
        std::shared_ptr<boost::asio::thread_pool> threads,
        std::function<std::unique_ptr<Connection>()> open);
    ~AsyncSqliteConnection() override;

    Awaitable<Result> execute(std::string_view sql, const Params& params) override;
    Awaitable<void> execute_all(const std::vector<PendingStatement>& statements) override;
    /// In one hop to the strand.
    Awaitable<Result> execute_after(const std::vector<PendingStatement>& first,
                                    std::string_view sql, const Params& params) override;
    void begin(Connection::BeginMode mode, Clock::time_point deadline) override;
    Awaitable<void> commit() override;
    /// In one hop to the strand; rolled back there when one of `last` fails.
    Awaitable<void> commit_after(const std::vector<PendingStatement>& last) override;
    Awaitable<void> rollback() override;
    Awaitable<bool> ping() override;
    bool cancel() noexcept override;
    bool broken() const noexcept override { return connection_->broken(); }
    /// Read between statements only (the pool does): the strand is idle then.
    bool in_transaction() const noexcept override {
        return begin_pending_ || connection_->in_transaction();
    }
    Backend backend() const noexcept override { return Backend::sqlite; }
    StatementCacheCounts take_statement_counts() noexcept override {
        return connection_->take_statement_counts();
    }

private:
    using Strand = boost::asio::strand<boost::asio::thread_pool::executor_type>;
    AsyncSqliteConnection(std::shared_ptr<boost::asio::thread_pool> threads,
                          std::unique_ptr<Connection> connection);
    /// Runs f() on the strand, the pending BEGIN first; resumes the caller on its executor.
    template <class F>
    Awaitable<std::invoke_result_t<F>> run(F f);
    /// On the strand: BEGIN and the deadline, if a transaction waits for its first statement.
    void begin_if_pending();

    std::shared_ptr<boost::asio::thread_pool> threads_;  // outlives the strand
    Strand strand_;
    std::unique_ptr<Connection> connection_;
    std::atomic<bool> running_{false};  // a statement runs on the strand now
    bool begin_pending_ = false;  // set on the event loop, read on the strand: never at once
    Connection::BeginMode mode_ = Connection::BeginMode::deferred;
    Clock::time_point deadline_ = Clock::time_point::max();
};

}  // namespace dbsup
