// Each schedule's latest firing that a supervisor has dealt with, in the
// queue's database (table dbsup_schedules). It is what makes a firing enqueue
// exactly once however many supervisors run the schedule: advance() moves the
// mark only from the value the caller read, so of two supervisors handling one
// firing the second finds the mark moved (on PostgreSQL it waits for the
// first's row lock, then sees its commit) and enqueues nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "shared/db/session.hpp"

namespace dbsup {

class ScheduleLedger {
public:
    /// The schedule's mark, in the caller's transaction. A schedule never seen
    /// before is recorded at `now_ms`: it fires from now on, not for the past.
    static std::int64_t last_firing(Session& session, const std::string& name, std::int64_t now_ms);
    /// Moves the mark from `from_ms` to `to_ms`, in the caller's transaction;
    /// false when another supervisor moved it first.
    static bool advance(Session& session, const std::string& name, std::int64_t from_ms,
                        std::int64_t to_ms, std::int64_t now_ms);
    /// Every schedule's mark, by name; commits. Empty before the queue schema exists.
    static std::map<std::string, std::int64_t> all(Session& session);
};

}  // namespace dbsup
