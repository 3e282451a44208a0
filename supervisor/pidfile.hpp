// The supervisor's pidfile: created (or taken over from a dead supervisor),
// locked with flock for the supervisor's whole life, and removed at exit. The
// lock, not the pid written in it, decides whether another supervisor runs:
// a pid can be reused, and check-then-write races a second supervisor.
#pragma once

#include <string>

namespace dbsup {

class Pidfile {
public:
    /// Nothing for an empty path. @throws ConfigError when another supervisor
    /// holds it, or when it cannot be opened (a symlink is refused).
    explicit Pidfile(std::string path);
    ~Pidfile();
    Pidfile(const Pidfile&) = delete;
    Pidfile& operator=(const Pidfile&) = delete;

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace dbsup
