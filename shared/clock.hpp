// The process's clocks, one definition each: the monotonic clock heartbeats
// and ages are measured on (the same in every process of a host), how long
// since a steady time point, and wall-clock time as written in stats.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dbsup {

/// CLOCK_MONOTONIC in nanoseconds: comparable between the processes of a host.
std::uint64_t monotonic_ns() noexcept;

/// Nanoseconds from `start` until now.
std::uint64_t ns_since(std::chrono::steady_clock::time_point start) noexcept;

/// Now, UTC, ISO 8601 with milliseconds: "2026-11-22T12:00:00.123Z".
std::string utc_now();

/// An epoch time in milliseconds, UTC, ISO 8601 to the second: "2026-11-22T12:00:00Z".
std::string utc_text(std::int64_t epoch_ms);

}  // namespace dbsup
