// The command line of the dbsupervisor executable: parses arguments with CLI11,
// dispatches to one command, and turns every error into one clear message and
// an exit code (see ExitCode). This is the process edge: nothing below it
// prints errors or calls exit().
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {

enum ExitCode : int {
    kExitOk = 0,
    kExitFailure = 1,       // a database could not be used, or a command failed
    kExitUsage = 2,         // bad arguments or bad configuration
};

/// Flags that override the configuration file.
struct Overrides {
    std::optional<std::string> config_path;
    std::optional<std::int64_t> workers;
    std::optional<std::string> stats_file;
    std::optional<std::string> pidfile;
};

class Cli {
public:
    /// Runs the command line; returns the process exit code. register_tasks
    /// adds a program's own C++ handlers (dbsup::run): workers exec this same
    /// executable, so they have them too.
    static int run(int argc, char** argv, const TaskRegistrar& register_tasks = {});

    /// The configuration from --config or, without it, the DATABASE_* environment,
    /// with command-line overrides applied. @throws ConfigError
    static Config load_config(const Overrides& overrides);
};

}  // namespace dbsup
