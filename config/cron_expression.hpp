// A cron schedule: five fields (minute hour day-of-month month day-of-week)
// with *, lists, ranges, steps and JAN-DEC / SUN-SAT names (7 is Sunday too),
// or a shortcut (@yearly, @annually, @monthly, @weekly, @daily, @midnight,
// @hourly). When both day fields are restricted a day matching either counts,
// as in every cron since Vixie's.
//
// Firing times are local times in a time zone (the IANA database through
// Howard Hinnant's date library). Across daylight-saving changes: a local
// time that occurs twice fires once (its first occurrence); one that a jump
// skips fires as the clock jumps past it (an hour late), so nothing is lost.
//
// Two supervisors computing from one expression get the same instants, which
// is what lets the database deduplicate their firings (supervisor/scheduler.hpp).
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace date {
class time_zone;
}

namespace dbsup {

class CronError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

class CronExpression {
public:
    using Minutes = std::chrono::sys_time<std::chrono::minutes>;

    /// @throws CronError naming the field and what is wrong with it.
    static CronExpression parse(const std::string& text);

    /// The first firing strictly after `after`, in `zone`; nullopt when there
    /// is none within eight years (say "0 0 30 2 *": February has no 30th).
    std::optional<Minutes> next_after(std::chrono::sys_seconds after,
                                      const date::time_zone& zone) const;

    const std::string& text() const noexcept { return text_; }

private:
    bool day_matches(std::chrono::sys_days day) const;
    std::optional<Minutes> first_in_day(std::chrono::sys_days local_day,
                                        std::chrono::minutes from,
                                        std::chrono::sys_seconds after,
                                        const date::time_zone& zone) const;

    std::string text_;
    std::bitset<60> minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_;    // 1-31
    std::bitset<13> months_;  // 1-12
    std::bitset<7> weekdays_;  // 0 = Sunday
    bool days_restricted_ = false;
    bool weekdays_restricted_ = false;
};

}  // namespace dbsup
