// `dbsupervisor stats [--file F] [--json] [--watch]`: reads the supervisor's
// stats file and prints it as a readable table (supervisor, jobs, queue,
// workers, pools), or as the JSON itself; --watch redraws it every second in
// place on a terminal until interrupted.
#pragma once

#include <string>

namespace dbsup {

class StatsCommand {
public:
    static int run(const std::string& path, bool json, bool watch);
};

}  // namespace dbsup
