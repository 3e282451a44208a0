// Tuning of one ConnectionPool, in the units the pool works in. Built from a
// DatabaseConfig by from_config(); tests build it directly for short times.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "config/config.hpp"
#include "shared/errors.hpp"
#include "shared/metrics/histogram.hpp"

namespace dbsup {

struct PoolOptions {
    std::string name = "main";
    Backend backend = Backend::sqlite;  // known without opening a connection
    std::size_t size = 5;
    std::size_t max_overflow = 2;
    std::chrono::milliseconds timeout{5000};
    bool pre_ping = true;
    std::chrono::milliseconds recycle{0};  // 0: never
    std::chrono::milliseconds leak_detection{0};  // 0: off
    std::chrono::milliseconds statement_timeout{0};  // 0: none; see Session::begin()
    CircuitBreakerConfig breaker{.window = 0};  // window 0: no breaker

    /// breaker: [resilience] circuit_breaker (off when not given).
    static PoolOptions from_config(const DatabaseConfig& db,
                                   const CircuitBreakerConfig& breaker = {.window = 0});
};

/// A consistent snapshot of a pool's gauges and counters.
struct PoolStats {
    std::string name;
    std::size_t size = 0;      // configured pool_size
    std::size_t in_use = 0;
    std::size_t idle = 0;
    std::size_t overflow = 0;  // open connections beyond size
    std::size_t waiting = 0;
    std::size_t peak_open = 0;
    std::uint64_t checkouts_total = 0;
    std::uint64_t timeouts_total = 0;
    std::uint64_t opened_total = 0;
    std::uint64_t closed_total = 0;
    std::uint64_t recycled_total = 0;
    std::uint64_t preping_failures_total = 0;
    std::uint64_t leaks_total = 0;
    std::uint64_t wait_nanoseconds_total = 0;
    HistogramSnapshot wait;  // how long checkouts waited
    std::uint64_t breaker_state = 0;  // CircuitBreaker::State
    std::uint64_t breaker_opened_total = 0;
    std::uint64_t breaker_rejected_total = 0;
    bool owns_breaker = true;  // false: the breaker is another pool's (the async pool's is the sync one's)
    std::uint64_t statement_cache_hits_total = 0;  // counted as connections come back
    std::uint64_t statement_cache_misses_total = 0;
    std::uint64_t statement_cache_evictions_total = 0;
};

/// A connection's lifetime under recycle_s: up to 10% shorter, so connections
/// opened together do not all expire together.
std::chrono::steady_clock::duration jittered_lifetime(std::chrono::milliseconds lifetime);

/// The error of a checkout that waited `waited` in vain, with the pool's figures.
Error pool_timeout_error(const PoolOptions& options, std::chrono::nanoseconds waited,
                         std::size_t in_use, std::size_t idle, std::size_t waiting);

}  // namespace dbsup
