// mutex_ guards what stats() reads; the event loop's thread is the only one
// that changes anything, so no await ever happens with it held.
#include "shared/db/async_pool.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstring>

#include "shared/db/leak_report.hpp"
#include "shared/errors.hpp"

namespace dbsup {

namespace asio = boost::asio;

// A coroutine waiting for a connection: a returned one is handed to it
// directly, or room to open one; its timer is cancelled to wake it.
struct AsyncPool::Waiter {
    explicit Waiter(const asio::any_io_executor& executor) : wake(executor) {}
    asio::steady_timer wake;
    std::unique_ptr<AsyncConnection> connection;
    bool may_open = false;
};

void AsyncLease::release() noexcept {
    if (connection_ && pool_) pool_->give_back(std::move(connection_));
    connection_.reset();
}

AsyncPool::AsyncPool(PoolOptions options, std::shared_ptr<ConnectionPool> breaker_owner,
                     Factory factory)
    : options_(std::move(options)),
      breaker_owner_(std::move(breaker_owner)),
      factory_(std::move(factory)) {
    counters_.name = options_.name + "/async";
    counters_.size = options_.size;
}

AsyncPool::~AsyncPool() = default;

Awaitable<AsyncLease> AsyncPool::acquire(std::string_view holder, Clock::time_point deadline) {
    breaker().admit();
    std::unique_ptr<AsyncConnection> connection = co_await take_idle_or_reserve(deadline);
    if (!connection) connection = co_await open_reserved();
    connection = co_await make_ready(std::move(connection));
    co_return checked_out(std::move(connection), holder);
}

Awaitable<std::unique_ptr<AsyncConnection>> AsyncPool::take_idle_or_reserve(
    Clock::time_point deadline) {
    const auto start = Clock::now();
    const std::size_t limit = options_.size + options_.max_overflow;
    std::unique_ptr<AsyncConnection> connection;
    bool reserved = false;
    if (!idle_.empty()) {
        std::lock_guard lock(mutex_);
        connection = std::move(idle_.back());
        idle_.pop_back();
    } else if (open_ < limit) {
        std::lock_guard lock(mutex_);
        ++open_;
        counters_.peak_open = std::max(counters_.peak_open, open_);
        reserved = true;
    } else {
        auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
        waiter->wake.expires_at(std::min(start + options_.timeout, deadline));
        {
            std::lock_guard lock(mutex_);
            waiters_.push_back(waiter);
        }
        boost::system::error_code ec;
        co_await waiter->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        std::lock_guard lock(mutex_);
        std::erase(waiters_, waiter);
        connection = std::move(waiter->connection);
        reserved = waiter->may_open;
        if (!connection && !reserved) {
            if (ec == asio::error::operation_aborted)  // cancelled from outside: not a timeout
                throw boost::system::system_error(ec);
            ++counters_.timeouts_total;
            throw pool_timeout_error(options_, Clock::now() - start, in_use_.size(), idle_.size(),
                                     waiters_.size() + 1);
        }
    }
    const auto waited = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
    std::lock_guard lock(mutex_);
    counters_.wait_nanoseconds_total += waited;
    wait_.record(waited);
    co_return connection;
}

Awaitable<std::unique_ptr<AsyncConnection>> AsyncPool::open_reserved() {
    std::unique_ptr<AsyncConnection> connection;
    std::optional<Error> failed;
    try {
        connection = co_await factory_();
    } catch (const Error& e) {
        failed = e;
    } catch (...) {
        unreserve();
        throw;
    }
    if (failed) {
        unreserve();
        breaker().record(*failed);
        throw *failed;
    }
    const auto now = Clock::now();
    connection->pool_state.created_at = now;
    connection->pool_state.last_used = now;
    if (options_.recycle.count() > 0)
        connection->pool_state.expires_at = now + jittered_lifetime(options_.recycle);
    std::lock_guard lock(mutex_);
    connection->pool_state.id = ++counters_.opened_total;
    co_return connection;
}

// Replaces an expired connection, or one that fails its pre-ping, by a new one.
Awaitable<std::unique_ptr<AsyncConnection>> AsyncPool::make_ready(
    std::unique_ptr<AsyncConnection> connection) {
    const auto now = Clock::now();
    const bool expired = now >= connection->pool_state.expires_at;
    const bool dead = !expired && options_.pre_ping &&
                      now - connection->pool_state.last_used > ConnectionPool::kPingIdle &&
                      !co_await connection->ping();
    if (!expired && !dead) co_return connection;
    count_closed(expired ? &PoolStats::recycled_total : &PoolStats::preping_failures_total);
    connection.reset();  // our place in open_ stays reserved for the replacement
    co_return co_await open_reserved();
}

AsyncLease AsyncPool::checked_out(std::unique_ptr<AsyncConnection> connection,
                                  std::string_view holder) {
    auto& state = connection->pool_state;
    state.checked_out_at = Clock::now();
    state.leak_reported = false;
    const std::size_t n = std::min(holder.size(), sizeof state.holder - 1);
    std::memcpy(state.holder, holder.data(), n);
    state.holder[n] = '\0';
    std::lock_guard lock(mutex_);
    in_use_.push_back(connection.get());
    ++counters_.checkouts_total;
    return AsyncLease(this, std::move(connection));
}

void AsyncPool::count_closed(std::uint64_t PoolStats::*reason) noexcept {
    std::lock_guard lock(mutex_);
    ++(counters_.*reason);
    ++counters_.closed_total;
}

void AsyncPool::unreserve() noexcept {
    std::lock_guard lock(mutex_);
    if (!waiters_.empty()) {  // the room goes to the first waiter
        waiters_.front()->may_open = true;
        waiters_.front()->wake.cancel();
        waiters_.pop_front();
        return;
    }
    --open_;
}

void AsyncPool::give_back(std::unique_ptr<AsyncConnection> connection) noexcept {
    const bool reusable = !connection->broken() && !connection->in_transaction();
    const StatementCacheCounts statements = connection->take_statement_counts();
    std::unique_ptr<AsyncConnection> to_close;
    {
        std::lock_guard lock(mutex_);
        counters_.statement_cache_hits_total += statements.hits;
        counters_.statement_cache_misses_total += statements.misses;
        counters_.statement_cache_evictions_total += statements.evictions;
        std::erase(in_use_, connection.get());
        if (reusable && open_ <= options_.size) {
            connection->pool_state.last_used = Clock::now();
            if (!waiters_.empty()) {
                waiters_.front()->connection = std::move(connection);
                waiters_.front()->wake.cancel();
                waiters_.pop_front();
                return;
            }
            idle_.push_back(std::move(connection));
            return;
        }
        to_close = std::move(connection);
        ++counters_.closed_total;
    }
    unreserve();  // its room: to a waiter, or free
}

PoolStats AsyncPool::stats() const {
    std::lock_guard lock(mutex_);
    PoolStats s = counters_;
    s.wait = wait_.snapshot();
    s.in_use = in_use_.size();
    s.idle = idle_.size();
    s.overflow = open_ > options_.size ? open_ - options_.size : 0;
    s.waiting = waiters_.size();
    s.owns_breaker = false;
    const CircuitBreaker& b = breaker_owner_->breaker();
    s.breaker_state = static_cast<std::uint64_t>(b.state());
    s.breaker_opened_total = b.opened_total();
    s.breaker_rejected_total = b.rejected_total();
    return s;
}

std::size_t AsyncPool::check_leaks() {
    if (options_.leak_detection.count() <= 0) return 0;
    return LeakReport::check(mutex_, in_use_, counters_.leaks_total, counters_.name,
                             options_.leak_detection);
}

}  // namespace dbsup
