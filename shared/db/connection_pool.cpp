// The lock protects idle_, in_use_, open_ and counters_. A checkout reserves its
// place in open_ under the lock, then opens or pings without it, so a slow
// server never blocks threads that could be served from idle_.
#include "shared/db/connection_pool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "shared/db/leak_report.hpp"
#include "shared/errors.hpp"

namespace dbsup {
ConnectionPool::ConnectionPool(PoolOptions options, Factory factory)
    : options_(std::move(options)),
      factory_(std::move(factory)),
      breaker_(options_.name, options_.breaker) {
    idle_.reserve(options_.size + options_.max_overflow);
    in_use_.reserve(options_.size + options_.max_overflow);
    counters_.name = options_.name;
    counters_.size = options_.size;
    if (options_.leak_detection.count() > 0)
        leak_watcher_ = std::make_unique<std::thread>([this] { leak_watch_loop(); });
}

ConnectionPool::~ConnectionPool() {
    if (abandoned_) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    available_.notify_all();
    if (leak_watcher_) leak_watcher_->join();
}

ConnectionLease ConnectionPool::acquire(std::string_view holder,
                                        std::optional<Clock::time_point> deadline) {
    breaker_.admit();
    std::unique_lock lock(mutex_);
    std::unique_ptr<Connection> connection = take_idle_or_reserve(lock, deadline);
    lock.unlock();
    if (!connection) connection = open_reserved();
    connection = make_ready(std::move(connection));
    lock.lock();
    mark_checked_out(*connection, holder);
    return ConnectionLease(this, std::move(connection));
}

// Returns an idle connection, or nullptr after reserving room to open one.
std::unique_ptr<Connection> ConnectionPool::take_idle_or_reserve(
    std::unique_lock<std::mutex>& lock, std::optional<Clock::time_point> caller_deadline) {
    const std::size_t limit = options_.size + options_.max_overflow;
    auto start = Clock::now();
    auto deadline = std::min(start + options_.timeout,
                             caller_deadline.value_or(Clock::time_point::max()));
    while (idle_.empty() && open_ >= limit) {
        ++counters_.waiting;
        bool woke = available_.wait_until(lock, deadline, [&] {
            return !idle_.empty() || open_ < limit;
        });
        --counters_.waiting;
        if (!woke) throw_timeout(Clock::now() - start);
    }
    auto waited = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
    counters_.wait_nanoseconds_total += waited;
    wait_.record(waited);
    if (!idle_.empty()) {
        std::unique_ptr<Connection> connection = std::move(idle_.back());
        idle_.pop_back();
        return connection;
    }
    ++open_;
    counters_.peak_open = std::max(counters_.peak_open, open_);
    return nullptr;
}

void ConnectionPool::throw_timeout(std::chrono::nanoseconds waited) {
    ++counters_.timeouts_total;
    throw pool_timeout_error(options_, waited, in_use_.size(), idle_.size(), counters_.waiting + 1);
}

std::unique_ptr<Connection> ConnectionPool::open_reserved() {
    std::unique_ptr<Connection> connection;
    try {
        connection = factory_();
    } catch (const Error& e) {
        unreserve();
        breaker_.record(e);
        throw;
    } catch (...) {
        unreserve();
        throw;
    }
    auto now = Clock::now();
    connection->pool_state.created_at = now;
    connection->pool_state.last_used = now;
    if (options_.recycle.count() > 0)
        connection->pool_state.expires_at = now + jittered_lifetime(options_.recycle);
    std::lock_guard lock(mutex_);
    connection->pool_state.id = ++counters_.opened_total;
    return connection;
}

// Replaces an expired connection, or one that fails its pre-ping, by a new one.
std::unique_ptr<Connection> ConnectionPool::make_ready(std::unique_ptr<Connection> connection) {
    auto now = Clock::now();
    bool expired = now >= connection->pool_state.expires_at;
    bool dead = !expired && options_.pre_ping &&
                now - connection->pool_state.last_used > kPingIdle && !connection->ping();
    if (!expired && !dead) return connection;
    {
        std::lock_guard lock(mutex_);
        ++(expired ? counters_.recycled_total : counters_.preping_failures_total);
        ++counters_.closed_total;
    }
    connection.reset();  // our place in open_ stays reserved for the replacement
    return open_reserved();
}

void ConnectionPool::mark_checked_out(Connection& connection, std::string_view holder) noexcept {
    auto& state = connection.pool_state;
    state.checked_out_at = Clock::now();
    state.leak_reported = false;
    std::size_t n = std::min(holder.size(), sizeof state.holder - 1);
    std::memcpy(state.holder, holder.data(), n);
    state.holder[n] = '\0';
    in_use_.push_back(&connection);
    ++counters_.checkouts_total;
}

void ConnectionPool::unreserve() noexcept {
    {
        std::lock_guard lock(mutex_);
        --open_;
    }
    available_.notify_one();
}

void ConnectionPool::give_back(std::unique_ptr<Connection> connection) noexcept {
    bool reusable = connection->reset();
    const StatementCacheCounts statements = connection->take_statement_counts();
    std::unique_ptr<Connection> to_close;
    {
        std::lock_guard lock(mutex_);
        counters_.statement_cache_hits_total += statements.hits;
        counters_.statement_cache_misses_total += statements.misses;
        counters_.statement_cache_evictions_total += statements.evictions;
        auto it = std::find(in_use_.begin(), in_use_.end(), connection.get());
        if (it != in_use_.end()) {
            *it = in_use_.back();
            in_use_.pop_back();
        }
        if (abandoned_) {
            (void)connection.release();  // belongs to the parent process: never close it
            return;
        }
        if (reusable && open_ <= options_.size) {
            connection->pool_state.last_used = Clock::now();
            idle_.push_back(std::move(connection));
        } else {
            to_close = std::move(connection);
            --open_;
            ++counters_.closed_total;
        }
    }
    available_.notify_one();
    // to_close is destroyed here, outside the lock: closing may take a round trip.
}

PoolStats ConnectionPool::stats() const {
    std::lock_guard lock(mutex_);
    PoolStats s = counters_;
    s.wait = wait_.snapshot();
    s.size = options_.size;
    s.in_use = in_use_.size();
    s.idle = idle_.size();
    s.overflow = open_ > options_.size ? open_ - options_.size : 0;
    s.breaker_state = static_cast<std::uint64_t>(breaker_.state());
    s.breaker_opened_total = breaker_.opened_total();
    s.breaker_rejected_total = breaker_.rejected_total();
    return s;
}

std::size_t ConnectionPool::check_leaks() {
    return LeakReport::check(mutex_, in_use_, counters_.leaks_total, options_.name,
                             options_.leak_detection);
}

void ConnectionPool::leak_watch_loop() {
    auto period = std::max(options_.leak_detection / 4, std::chrono::milliseconds(5));
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        available_.wait_for(lock, period, [this] { return stopping_; });
        if (stopping_) break;
        lock.unlock();
        check_leaks();
        lock.lock();
    }
}

void ConnectionPool::abandon() noexcept {
    abandoned_ = true;
    for (auto& connection : idle_) (void)connection.release();
    idle_.clear();
    // The watcher thread does not exist in this process; joining it would hang.
    (void)leak_watcher_.release();
}

}  // namespace dbsup
