// When a schedule fires, as epoch milliseconds: its cron expression in its
// time zone, or every `every_ms` counted from the Unix epoch (so every
// supervisor agrees on the instants without talking to the others).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/cron_expression.hpp"

namespace date {
class time_zone;
}

namespace dbsup {

class ScheduleTimes {
public:
    /// How far back missed firings are looked for, and how many "all" enqueues.
    static constexpr std::int64_t kLookBackMs = 366LL * 86'400'000;
    static constexpr std::size_t kMaxCatchUp = 100;
    /// With catch_up = "none" a firing this late (or half its period) is skipped.
    static constexpr std::int64_t kOnTimeMs = 60'000;

    /// @throws CronError or std::runtime_error (unknown zone): the config
    /// loader has checked both, so only for a hand-made ScheduleConfig.
    explicit ScheduleTimes(const ScheduleConfig& schedule);

    /// The first firing strictly after `after_ms`; nullopt when there is none.
    std::optional<std::int64_t> next_after(std::int64_t after_ms) const;

    struct Due {
        std::vector<std::int64_t> enqueue;     // ascending
        std::optional<std::int64_t> advance_to;  // the latest firing up to now, if any came
        std::size_t skipped = 0;               // came, but catch_up leaves them out
    };
    /// What to do at `now_ms` when the last recorded firing is `last_ms`: the
    /// firings in (last_ms, now_ms], chosen by catch_up.
    Due due(std::int64_t last_ms, std::int64_t now_ms) const;

    /// "cron '0 3 * * *' in Europe/Berlin" or "every 30s".
    std::string describe() const;

private:
    /// The latest kMaxCatchUp firings in (from, to], and how many came in all.
    std::vector<std::int64_t> firings(std::int64_t from, std::int64_t to, std::size_t& count) const;

    ScheduleConfig schedule_;
    std::optional<CronExpression> cron_;
    const date::time_zone* zone_ = nullptr;
};

}  // namespace dbsup
