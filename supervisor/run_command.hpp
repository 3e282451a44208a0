// `dbsupervisor [run]`: verifies every database, then supervises the workers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "config/config.hpp"
#include "shared/log_options.hpp"

namespace dbsup {

struct RunOptions {
    std::int64_t demo_jobs = 0;  // > 0: enqueue that many `demo` jobs before the workers start
    LogOptions log;                  // given to the workers too
    std::function<Config()> reload;  // SIGHUP: the configuration read again
    std::string metrics_listen;      // "[HOST:]PORT": serve /metrics and /healthz there
    /// --dashboard: serve the dashboard there ("" = not); actions need the token.
    std::string dashboard_listen;
    bool dashboard_actions = false;
    std::string dashboard_token;
    bool migrate = true;             // false: an outdated queue schema is an error, not upgraded
};

class RunCommand {
public:
    static int run(const Config& config, const RunOptions& options = {});
};

}  // namespace dbsup
