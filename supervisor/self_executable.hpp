// The supervisor's own executable, held open so that every worker runs the very
// file the supervisor runs. A package upgrade replaces /usr/bin/dbsupervisor
// under a running supervisor; spawning by path would then start new workers
// from the new binary, with a shared-memory layout or schema the old supervisor
// does not know. Spawning through /proc/self/fd/N of a descriptor opened on
// /proc/self/exe at start always reaches the old file, even once it is unlinked.
#pragma once

#include <string>

namespace dbsup {

class SelfExecutable {
public:
    /// @throws std::system_error when /proc/self/exe cannot be opened.
    SelfExecutable();
    ~SelfExecutable();
    SelfExecutable(const SelfExecutable&) = delete;
    SelfExecutable& operator=(const SelfExecutable&) = delete;

    /// What to exec: "/proc/self/fd/N" (N is inherited across fork, so the
    /// child's own table holds the same file).
    const std::string& exec_path() const noexcept { return exec_path_; }
    /// The path it was started from, for children's argv[0] and for messages.
    const std::string& path() const noexcept { return path_; }

private:
    int fd_ = -1;
    std::string exec_path_;
    std::string path_;
};

}  // namespace dbsup
