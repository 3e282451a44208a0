// A job that cannot run yet ("try again in N seconds"): it goes back to
// waiting, due after the delay, without spending an attempt. A C++ handler
// throws SnoozeJob; a SQL task calls dbsup_snooze(seconds) (PostgreSQL: a
// function of the queue schema; SQLite: one every connection has), which
// raises an error whose message carries the token "dbsup_snooze:<ms>".
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace dbsup {

class SnoozeJob : public std::runtime_error {
public:
    /// delay: from 0 to kMaxDelay (longer is cut to it).
    explicit SnoozeJob(std::chrono::milliseconds delay);
    std::chrono::milliseconds delay() const noexcept { return delay_; }

    static constexpr std::chrono::milliseconds kMaxDelay = std::chrono::hours(24 * 30);
    /// The delay an error message asks for (its "dbsup_snooze:<ms>" token), if any.
    static std::optional<std::chrono::milliseconds> requested_by(std::string_view message);

private:
    std::chrono::milliseconds delay_;
};

}  // namespace dbsup
