// `dbsupervisor check-config`: validates without connecting to anything, prints
// the resolved configuration (redacted) on stdout and every problem on stderr.
#pragma once

#include "supervisor/cli.hpp"

namespace dbsup {

class CheckConfigCommand {
public:
    /// @throws ConfigError with every error found.
    static int run(const Overrides& overrides);
};

}  // namespace dbsup
