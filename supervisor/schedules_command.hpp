// `dbsupervisor schedules [--json]`: every configured schedule with its last
// firing (as the database records it, shared by all supervisors) and its next.
#pragma once

#include "config/config.hpp"

namespace dbsup {

class SchedulesCommand {
public:
    static int run(const Config& config, bool json);
};

}  // namespace dbsup
