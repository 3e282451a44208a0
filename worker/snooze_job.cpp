#include "worker/snooze_job.hpp"

#include <algorithm>
#include <charconv>
#include <string>

namespace dbsup {
namespace {

constexpr std::string_view kToken = "dbsup_snooze:";

std::chrono::milliseconds bounded(std::chrono::milliseconds delay) {
    return std::clamp(delay, std::chrono::milliseconds(0), SnoozeJob::kMaxDelay);
}

}  // namespace

SnoozeJob::SnoozeJob(std::chrono::milliseconds delay)
    : std::runtime_error(std::string(kToken) + std::to_string(bounded(delay).count())),
      delay_(bounded(delay)) {}

std::optional<std::chrono::milliseconds> SnoozeJob::requested_by(std::string_view message) {
    const auto at = message.find(kToken);
    if (at == std::string_view::npos) return std::nullopt;
    const char* first = message.data() + at + kToken.size();
    long long ms = 0;
    auto [end, error] = std::from_chars(first, message.data() + message.size(), ms);
    if (error != std::errc() || end == first) return std::nullopt;
    return bounded(std::chrono::milliseconds(ms));
}

}  // namespace dbsup
