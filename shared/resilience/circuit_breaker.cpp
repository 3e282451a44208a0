#include "shared/resilience/circuit_breaker.hpp"

#include <spdlog/spdlog.h>

namespace dbsup {

CircuitBreaker::CircuitBreaker(std::string database, const CircuitBreakerConfig& config)
    : database_(std::move(database)),
      config_(config),
      window_(static_cast<std::size_t>(std::max<std::int64_t>(config.window, 0))) {}

bool CircuitBreaker::counts_as_failure(const Error& error) noexcept {
    switch (error.code()) {
        case ErrorCode::connection_failed:
        case ErrorCode::broken_connection:
        case ErrorCode::pool_timeout:
            return true;
        default:
            return false;
    }
}

void CircuitBreaker::admit() {
    if (window_.empty()) return;
    std::unique_lock lock(mutex_);
    const auto now = Clock::now();
    if (state_ == State::open && now >= open_until_) {
        state_ = State::half_open;
        spdlog::info("database '{}': circuit breaker half-open, trying {} call(s)", database_,
                     config_.half_open_calls);
    }
    if (state_ == State::half_open && now >= open_until_) {
        // A new round of trials (also when the last round's calls never reported back).
        trials_admitted_ = trials_passed_ = 0;
        open_until_ = now + std::chrono::milliseconds(config_.open_ms);
    }
    if (state_ == State::closed) return;
    if (state_ == State::half_open && trials_admitted_ < config_.half_open_calls) {
        ++trials_admitted_;
        return;
    }
    ++rejected_total_;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(open_until_ - now);
    throw Error(ErrorCode::circuit_open,
                "circuit breaker open after repeated connection failures; failing fast" +
                    (state_ == State::open
                         ? " for " + std::to_string(std::max<std::int64_t>(left.count(), 0)) +
                               " ms more"
                         : std::string(" while trial calls run")),
                database_);
}

void CircuitBreaker::record(const Error& error) noexcept {
    if (counts_as_failure(error))
        record_failure();
    else
        record_success();  // the database answered; the mistake was the caller's
}

void CircuitBreaker::record_success() noexcept {
    if (window_.empty()) return;
    std::unique_lock lock(mutex_);
    if (state_ == State::half_open) {
        if (++trials_passed_ >= config_.half_open_calls) close();
        return;
    }
    if (state_ == State::closed) push_outcome(false);
}

void CircuitBreaker::record_failure() noexcept {
    if (window_.empty()) return;
    std::unique_lock lock(mutex_);
    if (state_ == State::half_open) return open(lock);
    if (state_ != State::closed) return;
    push_outcome(true);
    if (filled_ == window_.size() &&
        static_cast<double>(failures_) >= config_.failure_rate * static_cast<double>(filled_))
        open(lock);
}

void CircuitBreaker::push_outcome(bool failed) noexcept {
    if (filled_ == window_.size()) {
        if (window_[next_]) --failures_;
    } else {
        ++filled_;
    }
    window_[next_] = failed;
    if (failed) ++failures_;
    next_ = (next_ + 1) % window_.size();
}

void CircuitBreaker::open(std::unique_lock<std::mutex>&) noexcept {
    state_ = State::open;
    open_until_ = Clock::now() + std::chrono::milliseconds(config_.open_ms);
    ++opened_total_;
    try {
        spdlog::warn("database '{}': circuit breaker open for {} ms ({} of the last {} calls "
                     "failed)", database_, config_.open_ms, failures_, filled_);
    } catch (...) {
    }
}

void CircuitBreaker::close() noexcept {
    state_ = State::closed;
    std::fill(window_.begin(), window_.end(), false);
    next_ = filled_ = failures_ = 0;
    try {
        spdlog::info("database '{}': circuit breaker closed", database_);
    } catch (...) {
    }
}

CircuitBreaker::State CircuitBreaker::state() const noexcept {
    std::lock_guard lock(mutex_);
    return state_;
}

std::uint64_t CircuitBreaker::opened_total() const noexcept {
    std::lock_guard lock(mutex_);
    return opened_total_;
}

std::uint64_t CircuitBreaker::rejected_total() const noexcept {
    std::lock_guard lock(mutex_);
    return rejected_total_;
}

const char* CircuitBreaker::to_string(State state) noexcept {
    switch (state) {
        case State::closed: return "closed";
        case State::open: return "open";
        case State::half_open: return "half_open";
    }
    return "unknown";
}

}  // namespace dbsup
