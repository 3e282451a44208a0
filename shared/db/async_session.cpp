#include "shared/db/async_session.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "shared/errors.hpp"
#include "shared/monitoring/track_query.hpp"

namespace dbsup {

namespace asio = boost::asio;

struct AsyncSession::CheckingOut {
    asio::steady_timer done;
};

AsyncSession::AsyncSession(std::shared_ptr<AsyncPool> pool, std::string holder,
                           QueryObserver* observer)
    : pool_(std::move(pool)), holder_(std::move(holder)), observer_(observer) {}

AsyncSession::AsyncSession(AsyncSession&&) noexcept = default;

AsyncSession::~AsyncSession() {
    if (lease_) end_transaction(false);  // the lease closes a connection left in a transaction
}

void AsyncSession::begin(std::optional<Clock::time_point> deadline, Connection::BeginMode mode) {
    if (in_transaction())
        throw Error(ErrorCode::usage, "a transaction is already open in this session",
                    pool_->options().name);
    if (deadline && *deadline <= Clock::now())
        throw Error(ErrorCode::timeout, "the deadline passed before the transaction began",
                    pool_->options().name);
    began_ = true;
    deadline_ = deadline;
    mode_ = mode;
    began_at_ = Clock::now();
}

Awaitable<AsyncConnection*> AsyncSession::connection() {
    while (checking_out_) {  // another coroutine of this session is checking out
        auto wait = checking_out_;
        boost::system::error_code ec;
        co_await wait->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (lease_) co_return &*lease_;
    if (!began_) begin();
    const Clock::time_point deadline = deadline_.value_or(Clock::time_point::max());
    checking_out_ = std::make_shared<CheckingOut>(
        CheckingOut{asio::steady_timer(co_await asio::this_coro::executor, Clock::time_point::max())});
    struct Done {
        std::shared_ptr<CheckingOut>& checking_out;
        ~Done() { std::exchange(checking_out, nullptr)->done.cancel(); }
    } done{checking_out_};
    AsyncLease lease = co_await pool_->acquire(holder_, deadline);
    if (deadline_ && *deadline_ <= Clock::now())
        throw Error(ErrorCode::timeout, "the deadline passed while waiting for a connection",
                    pool_->options().name);
    lease->begin(mode_, deadline);
    lease_ = std::move(lease);
    co_return &*lease_;
}

void AsyncSession::track(const QueryLabel& label, std::string_view sql, Clock::time_point started,
                         const Error* error) noexcept {
    if (error)
        pool_->breaker().record(*error);
    else
        pool_->breaker().record_success();
    if (observer_) observer_->on_query(label, sql, elapsed_ns(started), error);
}

Awaitable<Result> AsyncSession::execute(std::string_view sql, const Params& params) {
    return execute(QueryLabel::of_statement(sql), sql, params);
}

Awaitable<Result> AsyncSession::execute(const QueryLabel& label, std::string_view sql,
                                        const Params& params) {
    AsyncConnection* c = co_await connection();  // a checkout is not part of the query's time
    const auto started = Clock::now();
    std::optional<Error> failed;
    try {
        Result result = co_await c->execute(sql, params);
        track(label, sql, started, nullptr);
        co_return result;
    } catch (const Error& e) {
        failed = e;
    }
    track(label, sql, started, &*failed);
    throw *failed;
}

Awaitable<void> AsyncSession::execute_all(const std::vector<PendingStatement>& statements) {
    if (statements.empty()) co_return;
    AsyncConnection* c = co_await connection();
    const auto started = Clock::now();
    std::optional<Error> failed;
    try {
        co_await c->execute_all(statements);
    } catch (const Error& e) {
        failed = e;
    }
    if (failed) {
        track(*statements.front().label, statements.front().sql, started, &*failed);
        throw *failed;
    }
    track_all(statements, started);
}

Awaitable<Result> AsyncSession::execute_after(const std::vector<PendingStatement>& first,
                                              const QueryLabel& label, std::string_view sql,
                                              const Params& params) {
    AsyncConnection* c = co_await connection();
    const auto started = Clock::now();
    std::optional<Error> failed;
    try {
        Result result = co_await c->execute_after(first, sql, params);
        const PendingStatement last{&label, sql, {}};
        track_all(first, started, &last);
        co_return result;
    } catch (const Error& e) {
        failed = e;
    }
    track(first.empty() ? label : *first.front().label, first.empty() ? sql : first.front().sql,
          started, &*failed);
    throw *failed;
}

void AsyncSession::track_all(const std::vector<PendingStatement>& statements,
                             Clock::time_point started, const PendingStatement* extra) noexcept {
    pool_->breaker().record_success();
    if (!observer_) return;
    const std::uint64_t share = elapsed_ns(started) / (statements.size() + (extra ? 1 : 0));
    for (const PendingStatement& st : statements) observer_->on_query(*st.label, st.sql, share, nullptr);
    if (extra) observer_->on_query(*extra->label, extra->sql, share, nullptr);
}

Awaitable<void> AsyncSession::commit() {
    if (!lease_) {
        began_ = false;
        co_return;
    }
    std::optional<Error> failed;
    try {
        co_await lease_->commit();
    } catch (const Error& e) {
        failed = e;
    }
    end_transaction(!failed);
    if (failed) throw *failed;
}

Awaitable<void> AsyncSession::commit_after(const std::vector<PendingStatement>& last) {
    if (last.empty()) co_return co_await commit();
    AsyncConnection* c = co_await connection();
    const auto started = Clock::now();
    std::optional<Error> failed;
    try {
        co_await c->commit_after(last);
    } catch (const Error& e) {
        failed = e;
    }
    if (failed) track(*last.front().label, last.front().sql, started, &*failed);
    else track_all(last, started);
    end_transaction(!failed);
    if (failed) throw *failed;
}

Awaitable<void> AsyncSession::rollback() {
    if (lease_) {
        try {
            co_await lease_->rollback();
        } catch (...) {
            // Not rolled back (or cancelled first): the lease closes the connection.
        }
        end_transaction(false);
    }
    began_ = false;
}

void AsyncSession::end_transaction(bool committed) noexcept {
    began_ = false;
    deadline_.reset();
    if (observer_) observer_->on_transaction(elapsed_ns(began_at_), committed);
    lease_.release();
}

}  // namespace dbsup
