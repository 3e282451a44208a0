#include "supervisor/schedule_times.hpp"

#include <date/tz.h>

#include <algorithm>

namespace dbsup {
namespace {

std::chrono::sys_seconds to_seconds(std::int64_t ms) {
    return std::chrono::sys_seconds(std::chrono::seconds(ms / 1000));
}

}  // namespace

ScheduleTimes::ScheduleTimes(const ScheduleConfig& schedule)
    : schedule_(schedule), zone_(date::locate_zone(schedule.timezone)) {
    if (schedule.every_ms <= 0) cron_ = CronExpression::parse(schedule.cron);
}

std::optional<std::int64_t> ScheduleTimes::next_after(std::int64_t after_ms) const {
    if (!cron_) {
        const std::int64_t every = schedule_.every_ms;
        return (after_ms >= 0 ? after_ms / every + 1 : 0) * every;
    }
    // Firings fall on whole minutes: [after_ms, next second) still has none.
    auto next = cron_->next_after(to_seconds(after_ms), *zone_);
    if (!next) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(next->time_since_epoch()).count();
}

std::vector<std::int64_t> ScheduleTimes::firings(std::int64_t from, std::int64_t to,
                                                 std::size_t& count) const {
    std::vector<std::int64_t> out;
    count = 0;
    std::optional<std::int64_t> f = next_after(from);
    if (!cron_ && f && *f <= to) {
        // Arithmetic, not a walk: a year of one-second firings is 31 million.
        count = static_cast<std::size_t>((to - *f) / schedule_.every_ms + 1);
        if (count > kMaxCatchUp)
            f = *f + static_cast<std::int64_t>(count - kMaxCatchUp) * schedule_.every_ms;
    }
    for (; f && *f <= to; f = next_after(*f)) {
        out.push_back(*f);
        if (cron_) ++count;
        if (out.size() > kMaxCatchUp) out.erase(out.begin());
    }
    return out;
}

ScheduleTimes::Due ScheduleTimes::due(std::int64_t last_ms, std::int64_t now_ms) const {
    Due due;
    std::size_t count = 0;
    std::vector<std::int64_t> came =
        firings(std::max(last_ms, now_ms - kLookBackMs), now_ms, count);
    if (came.empty()) return due;
    const std::int64_t latest = came.back();
    due.advance_to = latest;
    if (schedule_.catch_up == "all") {
        due.enqueue = std::move(came);
    } else if (schedule_.catch_up == "last") {
        due.enqueue = {latest};
    } else {
        const std::int64_t period = next_after(latest).value_or(latest + kOnTimeMs) - latest;
        if (now_ms - latest <= std::min(kOnTimeMs, period / 2)) due.enqueue = {latest};
    }
    due.skipped = count - due.enqueue.size();
    return due;
}

std::string ScheduleTimes::describe() const {
    if (cron_) return "cron '" + schedule_.cron + "' in " + schedule_.timezone;
    // append(): GCC 12 at -O3 warns (-Wrestrict) on "literal" + std::to_string().
    return std::string("every ").append(std::to_string(schedule_.every_ms / 1000)).append("s");
}

}  // namespace dbsup
