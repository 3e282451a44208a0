#include "shared/db/async_sqlite_connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "shared/errors.hpp"

namespace dbsup {

namespace asio = boost::asio;

AsyncSqliteConnection::AsyncSqliteConnection(std::shared_ptr<asio::thread_pool> threads,
                                             std::unique_ptr<Connection> connection)
    : threads_(std::move(threads)),
      strand_(asio::make_strand(threads_->get_executor())),
      connection_(std::move(connection)) {}

AsyncSqliteConnection::~AsyncSqliteConnection() = default;

Awaitable<std::unique_ptr<AsyncConnection>> AsyncSqliteConnection::open(
    std::shared_ptr<asio::thread_pool> threads, std::function<std::unique_ptr<Connection>()> open) {
    auto connection = co_await asio::co_spawn(
        threads->get_executor(),
        [&]() -> Awaitable<std::unique_ptr<Connection>> { co_return open(); },
        asio::use_awaitable);
    co_return std::unique_ptr<AsyncConnection>(
        new AsyncSqliteConnection(std::move(threads), std::move(connection)));
}

template <class F>
Awaitable<std::invoke_result_t<F>> AsyncSqliteConnection::run(F f) {
    co_return co_await asio::co_spawn(
        strand_,
        [&]() -> Awaitable<std::invoke_result_t<F>> {
            struct Running {
                std::atomic<bool>& running;
                explicit Running(std::atomic<bool>& r) : running(r) { running = true; }
                ~Running() { running = false; }
            } running(running_);
            begin_if_pending();
            co_return f();
        },
        asio::use_awaitable);
}

void AsyncSqliteConnection::begin_if_pending() {
    if (!begin_pending_) return;
    begin_pending_ = false;
    connection_->begin(mode_);
    if (deadline_ != Clock::time_point::max())
        connection_->limit_transaction_time(std::max(
            std::chrono::milliseconds(1),
            std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now())));
}

Awaitable<Result> AsyncSqliteConnection::execute(std::string_view sql, const Params& params) {
    co_return co_await run([&] { return connection_->execute(sql, params); });
}

Awaitable<void> AsyncSqliteConnection::execute_all(const std::vector<PendingStatement>& statements) {
    co_await run([&] { connection_->execute_all(statements); });
}

Awaitable<Result> AsyncSqliteConnection::execute_after(const std::vector<PendingStatement>& first,
                                                       std::string_view sql, const Params& params) {
    co_return co_await run([&] {
        connection_->execute_all(first);
        return connection_->execute(sql, params);
    });
}

void AsyncSqliteConnection::begin(Connection::BeginMode mode, Clock::time_point deadline) {
    if (in_transaction())
        throw Error(ErrorCode::usage, "a transaction is already open on this connection");
    begin_pending_ = true;
    mode_ = mode;
    deadline_ = deadline;
}

Awaitable<void> AsyncSqliteConnection::commit() {
    if (std::exchange(begin_pending_, false) || !connection_->in_transaction()) co_return;
    co_await run([&] { connection_->commit(); });
}

Awaitable<void> AsyncSqliteConnection::commit_after(const std::vector<PendingStatement>& last) {
    if (last.empty()) {
        co_await commit();
        co_return;
    }
    co_await run([&] {  // a pending BEGIN first (run() sees to it)
        try {
            connection_->execute_all(last);
        } catch (...) {
            if (connection_->in_transaction()) connection_->rollback();
            throw;
        }
        if (connection_->in_transaction()) connection_->commit();
    });
}

Awaitable<void> AsyncSqliteConnection::rollback() {
    if (std::exchange(begin_pending_, false) || !connection_->in_transaction()) co_return;
    co_await run([&] { connection_->rollback(); });
}

bool AsyncSqliteConnection::cancel() noexcept {
    if (!running_) return false;
    connection_->cancel();  // sqlite3_interrupt: safe from another thread
    return true;
}

Awaitable<bool> AsyncSqliteConnection::ping() {
    co_return co_await run([&] { return connection_->ping(); });
}

}  // namespace dbsup
