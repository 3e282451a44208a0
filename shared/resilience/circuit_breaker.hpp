// A circuit breaker for one database in one process (HikariCP-style fail-fast
// when a database is gone). Closed: calls pass and their outcomes fill a
// sliding window of the last `window` calls; when the window is full and the
// failure rate reaches failure_rate, it opens. Open: every call fails at once
// with Error(circuit_open) naming the database, for open_ms. Then half-open:
// up to half_open_calls trial calls pass; all succeeding closes it, any
// failing opens it again. Only failures that say the database is unusable
// count (see counts_as_failure); a constraint violation is the caller's.
// Thread-safe; a window of 0 turns it off.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "shared/errors.hpp"

namespace dbsup {

class CircuitBreaker {
public:
    enum class State : std::uint64_t { closed, open, half_open };
    using Clock = std::chrono::steady_clock;

    CircuitBreaker(std::string database, const CircuitBreakerConfig& config);

    /// Before a call: @throws Error(circuit_open) while open.
    void admit();
    void record_success() noexcept;
    void record_failure() noexcept;
    /// Records the outcome of a call that threw `error`.
    void record(const Error& error) noexcept;
    static bool counts_as_failure(const Error& error) noexcept;

    State state() const noexcept;
    std::uint64_t opened_total() const noexcept;
    std::uint64_t rejected_total() const noexcept;
    static const char* to_string(State state) noexcept;

private:
    void open(std::unique_lock<std::mutex>& lock) noexcept;
    void close() noexcept;
    void push_outcome(bool failed) noexcept;

    const std::string database_;
    const CircuitBreakerConfig config_;
    mutable std::mutex mutex_;
    State state_ = State::closed;
    Clock::time_point open_until_{};
    std::vector<bool> window_;  // ring of outcomes, true = failed
    std::size_t next_ = 0, filled_ = 0, failures_ = 0;
    std::int64_t trials_admitted_ = 0, trials_passed_ = 0;
    std::uint64_t opened_total_ = 0, rejected_total_ = 0;
};

}  // namespace dbsup
