// `dbsupervisor health [--json]`: checks every configured database now (see
// DatabaseHealth) and prints one line each, or the stats file's health JSON.
// Exit 1 when a database that is not `optional` is unhealthy, else 0.
#pragma once

#include "config/config.hpp"

namespace dbsup {

class HealthCommand {
public:
    static int run(const Config& config, bool json);
};

}  // namespace dbsup
