#include "shared/clock.hpp"

#include <cstdio>
#include <ctime>

namespace dbsup {

std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t ns_since(std::chrono::steady_clock::time_point start) noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now() - start)
                                          .count());
}

namespace {

std::string seconds_text(std::time_t seconds) {
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    return date;
}

}  // namespace

std::string utc_now() {
    const auto now = std::chrono::system_clock::now();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    char out[40];
    std::snprintf(out, sizeof out, "%s.%03dZ",
                  seconds_text(std::chrono::system_clock::to_time_t(now)).c_str(),
                  static_cast<int>(ms.count()));
    return out;
}

std::string utc_text(std::int64_t epoch_ms) {
    return seconds_text(static_cast<std::time_t>(epoch_ms / 1000)) + "Z";
}

}  // namespace dbsup
