// Cron expressions and schedule firing times: fields, shortcuts, the day-of-
// month/day-of-week rule, time zones across daylight-saving changes, and
// which missed firings each catch_up mode enqueues.
#include <gtest/gtest.h>

#include <date/date.h>
#include <date/tz.h>

#include "config/cron_expression.hpp"
#include "shared/clock.hpp"
#include "supervisor/schedule_times.hpp"

namespace dbsup::test {
namespace {

using namespace date::literals;

std::int64_t ms(date::sys_days day, int h, int m, int s = 0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               (day + std::chrono::hours(h) + std::chrono::minutes(m) + std::chrono::seconds(s))
                   .time_since_epoch())
        .count();
}

ScheduleConfig cron(std::string expression, std::string zone = "UTC", std::string catch_up = "last") {
    ScheduleConfig s;
    s.name = "t";
    s.task = "t";
    s.cron = std::move(expression);
    s.timezone = std::move(zone);
    s.catch_up = std::move(catch_up);
    return s;
}

ScheduleConfig every(std::int64_t every_ms, std::string catch_up = "last") {
    ScheduleConfig s;
    s.name = "t";
    s.task = "t";
    s.every_ms = every_ms;
    s.catch_up = std::move(catch_up);
    return s;
}

std::string next(const std::string& expression, std::int64_t after,
                 const std::string& zone = "UTC") {
    auto n = ScheduleTimes(cron(expression, zone)).next_after(after);
    return n ? utc_text(*n) : "never";
}

TEST(CronExpression, FieldsListsRangesStepsAndNames) {
    const auto day = date::sys_days(2026_y / date::December / 1);  // a Tuesday
    EXPECT_EQ(next("* * * * *", ms(day, 10, 0, 30)), "2026-12-01T10:01:00Z");
    EXPECT_EQ(next("0 3 * * *", ms(day, 3, 0)), "2026-12-02T03:00:00Z");  // strictly after
    EXPECT_EQ(next("*/15 * * * *", ms(day, 10, 16)), "2026-12-01T10:30:00Z");
    EXPECT_EQ(next("5-10/2 * * * *", ms(day, 10, 7)), "2026-12-01T10:09:00Z");
    EXPECT_EQ(next("0 9,17 * * *", ms(day, 10, 0)), "2026-12-01T17:00:00Z");
    EXPECT_EQ(next("0 0 1 jan *", ms(day, 0, 0)), "2027-01-01T00:00:00Z");
    EXPECT_EQ(next("0 12 * * SAT", ms(day, 0, 0)), "2026-12-05T12:00:00Z");
    EXPECT_EQ(next("0 12 * * 7", ms(day, 0, 0)), "2026-12-06T12:00:00Z");  // 7 is Sunday
    EXPECT_EQ(next("30 * * * *", ms(day, 23, 45)), "2026-12-02T00:30:00Z");
}

TEST(CronExpression, ShortcutsMeanTheirFiveFields) {
    const auto day = date::sys_days(2026_y / date::December / 1);
    EXPECT_EQ(next("@hourly", ms(day, 10, 5)), "2026-12-01T11:00:00Z");
    EXPECT_EQ(next("@daily", ms(day, 10, 5)), "2026-12-02T00:00:00Z");
    EXPECT_EQ(next("@midnight", ms(day, 10, 5)), "2026-12-02T00:00:00Z");
    EXPECT_EQ(next("@weekly", ms(day, 10, 5)), "2026-12-06T00:00:00Z");
    EXPECT_EQ(next("@monthly", ms(day, 10, 5)), "2027-01-01T00:00:00Z");
    EXPECT_EQ(next("@yearly", ms(day, 10, 5)), "2027-01-01T00:00:00Z");
}

// Both day fields restricted: either matches (the 13th, or any Friday).
TEST(CronExpression, BothDayFieldsMatchEitherOne) {
    const auto day = date::sys_days(2026_y / date::December / 1);
    EXPECT_EQ(next("0 0 13 * 5", ms(day, 0, 0)), "2026-12-04T00:00:00Z");  // Friday the 4th
    EXPECT_EQ(next("0 0 13 * *", ms(day, 0, 0)), "2026-12-13T00:00:00Z");
    EXPECT_EQ(next("0 0 * * 5", ms(day, 0, 0)), "2026-12-04T00:00:00Z");
    EXPECT_EQ(next("0 0 29 2 *", ms(day, 0, 0)), "2028-02-29T00:00:00Z");
    EXPECT_EQ(next("0 0 30 2 *", ms(day, 0, 0)), "never");
}

TEST(CronExpression, LocalTimeInItsZone) {
    const auto day = date::sys_days(2026_y / date::December / 1);
    // Berlin is UTC+1 in winter: 03:00 there is 02:00 UTC.
    EXPECT_EQ(next("0 3 * * *", ms(day, 0, 0), "Europe/Berlin"), "2026-12-01T02:00:00Z");
    EXPECT_EQ(next("0 3 * * *", ms(day, 0, 0), "America/New_York"), "2026-12-01T08:00:00Z");
}

// 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls back to 02:00 CET.
TEST(CronExpression, DaylightSavingChangesLoseNothingAndRepeatNothing) {
    const auto spring = date::sys_days(2026_y / date::March / 29);
    // 02:30 does not exist that night: it fires as the clock jumps past, at 03:30 CEST.
    EXPECT_EQ(next("30 2 * * *", ms(spring, 0, 0), "Europe/Berlin"), "2026-03-29T01:30:00Z");
    const auto autumn = date::sys_days(2026_y / date::October / 25);
    // 02:30 happens twice: once, at its first occurrence (CEST, 00:30 UTC).
    EXPECT_EQ(next("30 2 * * *", ms(autumn, 0, 0), "Europe/Berlin"), "2026-10-25T00:30:00Z");
    EXPECT_EQ(next("30 2 * * *", ms(autumn, 0, 30), "Europe/Berlin"), "2026-10-26T01:30:00Z");
    // Hourly across the repeated hour: local 02:00 fires once (00:00 UTC), so
    // after it the next is local 03:00 (02:00 UTC): no local time twice.
    std::int64_t t = ms(autumn, 0, 0);
    std::vector<std::string> fired;
    for (int i = 0; i < 3; ++i) {
        t = *ScheduleTimes(cron("0 * * * *", "Europe/Berlin")).next_after(t);
        fired.push_back(utc_text(t));
    }
    EXPECT_EQ(fired, (std::vector<std::string>{"2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z",
                                               "2026-10-25T04:00:00Z"}));
}

TEST(CronExpression, BadExpressionsNameTheFieldAndTheProblem) {
    auto error = [](const std::string& text) {
        try {
            CronExpression::parse(text);
        } catch (const CronError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(error("* * * *"), "'* * * *' has 4 fields; give five (minute hour day-of-month "
                                "month day-of-week) or a shortcut such as @daily");
    EXPECT_EQ(error("60 * * * *"), "minute field '60': '60' is outside 0-59");
    EXPECT_EQ(error("* 5-1 * * *"), "hour field '5-1': '5-1' runs backwards");
    EXPECT_EQ(error("* * * foo *"), "month field 'foo': 'foo' is not a value");
    EXPECT_EQ(error("*/0 * * * *"), "minute field '*/0': a step must be 1 or more");
    EXPECT_EQ(error("1,,2 * * * *"), "minute field '1,,2': an empty list item");
    EXPECT_EQ(error("@often"), "'@often' is not a shortcut (@yearly, @annually, @monthly, "
                               "@weekly, @daily, @midnight, @hourly)");
}

TEST(ScheduleTimes, EveryCountsFromTheEpoch) {
    const ScheduleTimes t(every(30'000));
    EXPECT_EQ(t.next_after(0), 30'000);
    EXPECT_EQ(t.next_after(29'999), 30'000);
    EXPECT_EQ(t.next_after(30'000), 60'000);
    EXPECT_EQ(t.describe(), "every 30s");
}

TEST(ScheduleTimes, DueFiringsByCatchUp) {
    const std::int64_t s = 1000;
    // Last handled at 10 s; now 15.2 s: firings 11..15 came.
    auto due = [&](const std::string& mode) { return ScheduleTimes(every(s, mode)).due(10 * s, 15'200); };
    EXPECT_EQ(due("all").enqueue, (std::vector<std::int64_t>{11'000, 12'000, 13'000, 14'000, 15'000}));
    EXPECT_EQ(due("last").enqueue, (std::vector<std::int64_t>{15'000}));
    EXPECT_EQ(due("last").skipped, 4u);
    // "none": 15 s is 200 ms late, under half the period: on time.
    EXPECT_EQ(due("none").enqueue, (std::vector<std::int64_t>{15'000}));
    for (const char* mode : {"all", "last", "none"}) EXPECT_EQ(due(mode).advance_to, 15'000);
    // 700 ms late is missed for "none", yet the mark still moves past it.
    const auto late = ScheduleTimes(every(s, "none")).due(10 * s, 15'700);
    EXPECT_TRUE(late.enqueue.empty());
    EXPECT_EQ(late.advance_to, 15'000);
    EXPECT_EQ(late.skipped, 5u);
    // Nothing came: nothing to do, the mark stays.
    EXPECT_FALSE(ScheduleTimes(every(s)).due(15'000, 15'999).advance_to);
}

TEST(ScheduleTimes, CatchUpIsBounded) {
    // A year of one-second firings missed: "all" enqueues the latest 100, at once.
    const std::int64_t now = 400LL * 86'400'000;
    const auto due = ScheduleTimes(every(1000, "all")).due(0, now);
    ASSERT_EQ(due.enqueue.size(), ScheduleTimes::kMaxCatchUp);
    EXPECT_EQ(due.enqueue.back(), now);
    EXPECT_EQ(due.enqueue.front(), now - 99'000);
    EXPECT_EQ(due.skipped, 366u * 86'400 - 100);
    const auto hourly = ScheduleTimes(cron("0 * * * *", "UTC", "all")).due(0, now);
    ASSERT_EQ(hourly.enqueue.size(), ScheduleTimes::kMaxCatchUp);
    EXPECT_EQ(hourly.enqueue.back(), now);
}

}  // namespace
}  // namespace dbsup::test
