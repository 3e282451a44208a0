#include "shared/queue/schedule_ledger.hpp"

#include "shared/queue/queue_schema.hpp"

namespace dbsup {

std::int64_t ScheduleLedger::last_firing(Session& session, const std::string& name,
                                         std::int64_t now_ms) {
    session.execute("INSERT INTO dbsup_schedules (name, last_fire_at, updated_at) "
                    "VALUES ($1, $2, $2) ON CONFLICT (name) DO NOTHING",
                    {name, now_ms});
    Result r = session.execute("SELECT last_fire_at FROM dbsup_schedules WHERE name = $1", {name});
    return r.scalar<std::int64_t>();
}

bool ScheduleLedger::advance(Session& session, const std::string& name, std::int64_t from_ms,
                             std::int64_t to_ms, std::int64_t now_ms) {
    Result r = session.execute(
        "UPDATE dbsup_schedules SET last_fire_at = $3, updated_at = $4 "
        "WHERE name = $1 AND last_fire_at = $2",
        {name, from_ms, to_ms, now_ms});
    return r.affected_rows == 1;
}

std::map<std::string, std::int64_t> ScheduleLedger::all(Session& session) {
    std::map<std::string, std::int64_t> marks;
    if (QueueSchema::current_version(session) < 6) return marks;
    session.transact([&](Session& s) {
        Result r = s.execute("SELECT name, last_fire_at FROM dbsup_schedules");
        for (const Row& row : r.rows) marks[row.get<std::string>(0)] = row.get<std::int64_t>(1);
    });
    return marks;
}

}  // namespace dbsup
