// Logs go to stderr. --log-file points stderr at a file (appending), and SIGUSR1
// opens that path again so logrotate can move the old file away: the supervisor
// reopens and forwards USR1 to its workers, which reopen too.
#pragma once

#include <string>

namespace dbsup {

class LogFile {
public:
    /// Makes fd 2 the file at `path` (created 0640, appended to).
    /// @throws std::runtime_error naming the path and the reason.
    static void redirect_stderr(const std::string& path);
};

}  // namespace dbsup
