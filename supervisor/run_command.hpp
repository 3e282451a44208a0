// `dbsupervisor [run]`: verifies every database, then supervises the workers.
#pragma once

#include <cstdint>

#include "config/config.hpp"

namespace dbsup {

class RunCommand {
public:
    /// demo_jobs > 0: enqueue that many `demo` jobs before the workers start.
    static int run(const Config& config, std::int64_t demo_jobs = 0);
};

}  // namespace dbsup
