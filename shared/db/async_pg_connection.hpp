// A PostgreSQL connection for coroutines, on raw libpq (libpqxx blocks): its
// socket is watched by Asio, it runs in libpq's non-blocking pipeline mode, and
// statements are prepared through a per-connection StatementCache, as asyncpg does.
//
// Pipelining: statements awaited at once by several coroutines are sent
// together, each group ended by a sync, and read back in order (Boost.MySQL's
// and Redis clients' model). One awaiting coroutine at a time drives the
// socket: it sends every waiting group, reads their results, hands each to
// its waiter, and passes the driving on to the next waiter, so no two
// coroutines ever wait on the socket together.
//
// Deadlines: a statement still running at the transaction's deadline is
// cancelled on the server (PQcancel, which blocks, runs on a thread of the
// io_context's CancelRequests); the connection reads what is left up to the
// sync and is then discarded, so a late cancel can never reach a later
// statement. cancel() does the same at once (an operator's cancel). A
// coroutine cancelled while its statement is on the wire leaves the
// connection broken.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "shared/db/async_connection.hpp"
#include "shared/db/postgres_connection.hpp"
#include "shared/errors.hpp"

struct pg_conn;
struct pg_result;

namespace dbsup {

class AsyncPgConnection final : public AsyncConnection {
public:
    /// libpq's connect_timeout does not apply to a non-blocking connect.
    static constexpr std::chrono::seconds kConnectTimeout{5};
    /// How long a cancelled statement may take to answer before the connection is given up.
    static constexpr std::chrono::seconds kCancelGrace{2};
    /// Groups sent in one round trip at most.
    static constexpr std::size_t kMaxBatch = 256;

    /// Connects on the calling coroutine's executor without blocking it.
    /// @throws Error(connection_failed) naming the database, never the password.
    static Awaitable<std::unique_ptr<AsyncConnection>> open(std::string database,
                                                            std::string conninfo,
                                                            PostgresSettings settings);
    ~AsyncPgConnection() override;

    Awaitable<Result> execute(std::string_view sql, const Params& params) override;
    Awaitable<void> execute_all(const std::vector<PendingStatement>& statements) override;
    Awaitable<Result> execute_after(const std::vector<PendingStatement>& first,
                                    std::string_view sql, const Params& params) override;
    void begin(Connection::BeginMode mode, Clock::time_point deadline) override;
    Awaitable<void> commit() override;
    Awaitable<void> commit_after(const std::vector<PendingStatement>& last) override;
    Awaitable<void> rollback() override;
    Awaitable<bool> ping() override;
    bool cancel() noexcept override;
    bool broken() const noexcept override { return broken_; }
    bool in_transaction() const noexcept override { return in_transaction_ || begin_pending_; }
    Backend backend() const noexcept override { return Backend::postgresql; }
    StatementCacheCounts take_statement_counts() noexcept override {
        return statements_.take_counts();
    }
    /// The server process serving this connection (pg_backend_pid()).
    int backend_pid() const noexcept;

private:
    struct Request;
    enum class Command { other, prepare, statement, statement_rows };

    AsyncPgConnection(const boost::asio::any_io_executor& executor, std::string database,
                      PostgresSettings settings, pg_conn* conn);
    /// What connecting failed with, or null: never thrown, because `||`
    /// waits for one side to succeed, and the timer's would be taken instead.
    Awaitable<std::exception_ptr> connect();
    Awaitable<void> connect_steps();
    void watch_socket();
    /// Queues the request and returns once its results are in. @throws Error
    Awaitable<void> submit(const std::shared_ptr<Request>& request);
    /// Sends the waiting groups, reads their results, passes the driving on.
    Awaitable<void> drive();
    /// last: the batch's last group, which ends with a sync whatever the transaction.
    void send(Request& request, bool last);
    void send_statement(Request& request, std::string_view sql, const Params& params, bool rows);
    void send_other(Request& request, const std::string& sql);
    Awaitable<void> flush();
    Awaitable<void> read(Request& request);
    Awaitable<pg_result*> next_result();
    Awaitable<void> wait_readable();
    void take(Request& request, Command command, const std::string& prepared_sql,
              pg_result* result);
    void cancel_on_server() noexcept;
    /// Every request not yet answered fails with `error`; the connection is broken.
    void fail_all(const Error& error, std::vector<std::shared_ptr<Request>>& batch) noexcept;
    [[noreturn]] void throw_broken(const std::string& why);

    std::string database_;
    PostgresSettings settings_;
    pg_conn* conn_;
    boost::asio::posix::stream_descriptor socket_;  // libpq's socket, never closed by Asio
    boost::asio::steady_timer timer_;                // deadlines and the connect timeout
    Clock::time_point deadline_ = Clock::time_point::max();
    Clock::time_point cancel_sent_at_{};
    bool cancel_sent_ = false;
    bool cancel_asked_ = false;  // by cancel(), not by the deadline
    bool broken_ = false;
    bool begin_pending_ = false;
    bool in_transaction_ = false;
    bool driving_ = false;
    std::deque<std::shared_ptr<Request>> pending_;  // not sent yet
    StatementCache<std::string> statements_;        // SQL text -> prepared statement name
    std::vector<std::string> stale_;                // evicted names awaiting DEALLOCATE
};

}  // namespace dbsup
