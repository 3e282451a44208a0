// Retries work that failed for a reason that may pass: connection loss,
// serialization failure, deadlock, SQLITE_BUSY/SQLITE_LOCKED, admin shutdown,
// too many connections (Error::is_retryable). Never a constraint violation or
// a syntax error: those fail the same way every time. Up to `attempts` tries,
// sleeping a random time in [0, min(max, base * 2^(n-1))] between them (full
// jitter, so workers that failed together do not retry together), and never
// starting a try or a sleep past the deadline: the smallest remaining of the
// caller's deadlines (a job's timeout, say) wins.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <thread>

#include "config/config.hpp"
#include "shared/errors.hpp"

namespace dbsup {

class RetryPolicy {
public:
    using Clock = std::chrono::steady_clock;

    explicit RetryPolicy(const RetryConfig& config) : config_(config) {}

    static bool is_transient(const Error& error) noexcept { return error.is_retryable(); }
    /// Tries in all, the first included.
    std::int64_t attempts() const noexcept { return config_.attempts; }
    /// The pause before try `attempt` + 1 (attempt >= 1), drawn with full jitter.
    std::chrono::milliseconds delay(std::int64_t attempt, std::mt19937_64& random) const;

    /// f(); again after a transient Error while tries and time remain. `on_retry`
    /// (optional) sees each error that is retried. @throws the last error.
    template <class F, class OnRetry>
    decltype(auto) run(F&& f, std::optional<Clock::time_point> deadline, OnRetry&& on_retry) const;
    template <class F>
    decltype(auto) run(F&& f, std::optional<Clock::time_point> deadline = std::nullopt) const {
        return run(std::forward<F>(f), deadline, [](const Error&) {});
    }

private:
    RetryConfig config_;
};

template <class F, class OnRetry>
decltype(auto) RetryPolicy::run(F&& f, std::optional<Clock::time_point> deadline,
                                OnRetry&& on_retry) const {
    thread_local std::mt19937_64 random{std::random_device{}()};
    for (std::int64_t attempt = 1;; ++attempt) {
        try {
            return f();
        } catch (const Error& e) {
            if (!is_transient(e) || attempt >= config_.attempts) throw;
            const auto pause = delay(attempt, random);
            if (deadline && Clock::now() + pause >= *deadline) throw;
            on_retry(e);
            std::this_thread::sleep_for(pause);
        }
    }
}

}  // namespace dbsup
