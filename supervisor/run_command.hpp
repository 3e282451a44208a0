// `dbsupervisor [run]`: verifies every database, then supervises the workers.
#pragma once

#include "config/config.hpp"

namespace dbsup {

class RunCommand {
public:
    static int run(const Config& config);
};

}  // namespace dbsup
