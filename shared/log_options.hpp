// How a process logs, as chosen on the command line; the supervisor hands the
// same choice to every worker it spawns.
#pragma once

#include <string>
#include <vector>

namespace dbsup {

struct LogOptions {
    std::string file;           // "" = stderr; reopened on SIGUSR1
    std::string level = "info";  // trace, debug, info, warn, error
    std::string format = "text";  // text, json

    /// The flags that give a child process the same logging.
    std::vector<std::string> as_arguments() const {
        std::vector<std::string> args = {"--log-level", level, "--log-format", format};
        if (!file.empty()) args.insert(args.end(), {"--log-file", file});
        return args;
    }
};

}  // namespace dbsup
