#include "supervisor/schedules_command.hpp"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shared/clock.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/schedule_ledger.hpp"
#include "supervisor/cli.hpp"
#include "supervisor/schedule_times.hpp"

namespace dbsup {
namespace {

using json = nlohmann::json;

json time_json(std::optional<std::int64_t> ms) {
    return ms ? json(utc_text(*ms)) : json();
}

json schedule_json(const ScheduleConfig& s, const std::map<std::string, std::int64_t>& marks,
                   std::int64_t now) {
    const ScheduleTimes times(s);
    std::optional<std::int64_t> last;
    std::int64_t from = now;
    if (auto it = marks.find(s.name); it != marks.end()) {
        // A schedule is first recorded when it was first seen, not at a firing.
        if (times.next_after(it->second - 1) == it->second) last = it->second;
        from = std::max(now, it->second);
    }
    return {{"name", s.name},         {"schedule", times.describe()},
            {"task", s.task},         {"queue", s.queue},
            {"catch_up", s.catch_up}, {"last", time_json(last)},
            {"next", time_json(times.next_after(from))}};
}

std::string text(const json& value) { return value.is_null() ? "-" : value.get<std::string>(); }

}  // namespace

int SchedulesCommand::run(const Config& config, bool as_json) {
    if (config.schedules.empty()) {
        std::cout << (as_json ? "[]\n" : "no schedules configured ([schedules.NAME] in the config)\n");
        return kExitOk;
    }
    DatabaseManager::instance().init_worker(config.databases, "dbsupervisor/cli");
    Session& session = DatabaseManager::instance().session(config.queue.database);
    const Queue queue = Queue::from_config(config);
    queue.sync_clock(session);
    const auto marks = ScheduleLedger::all(session);
    json all = json::array();
    for (const auto& [name, schedule] : config.schedules)
        all.push_back(schedule_json(schedule, marks, queue.db_now()));
    if (as_json) {
        std::cout << all.dump(2) << "\n";
        return kExitOk;
    }
    std::printf("%-20s %-36s %-16s %-10s %-20s %-20s\n", "NAME", "SCHEDULE", "TASK", "CATCH_UP",
                "LAST", "NEXT");
    for (const json& s : all)
        std::printf("%-20s %-36s %-16s %-10s %-20s %-20s\n", text(s["name"]).c_str(),
                    text(s["schedule"]).c_str(), text(s["task"]).c_str(),
                    text(s["catch_up"]).c_str(), text(s["last"]).c_str(), text(s["next"]).c_str());
    return kExitOk;
}

}  // namespace dbsup
