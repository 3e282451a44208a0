#include "supervisor/pidfile.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config/config_error.hpp"

namespace dbsup {
namespace {

ConfigError refused(const std::string& path, const std::string& why) {
    return ConfigError({{path, "supervisor.pidfile", why}});
}

// The pid another supervisor wrote, for the message ("?" if unreadable).
std::string pid_in(int fd) {
    char text[32] = {};
    ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    std::string pid = n > 0 ? std::string(text, static_cast<std::size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return pid.empty() ? "?" : pid;
}

}  // namespace

Pidfile::Pidfile(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
    // CLOEXEC: workers must not inherit the lock; NOFOLLOW: a symlink planted
    // at the path must not make us write some other file.
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0) throw refused(path_, std::string("cannot open the pidfile: ") + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        std::string other = pid_in(fd_);
        ::close(fd_);
        fd_ = -1;
        throw refused(path_, "another supervisor (pid " + other + ") is running with this pidfile");
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 ||
        ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        std::string why = std::strerror(errno);
        ::close(fd_);
        fd_ = -1;
        throw refused(path_, "cannot write the pidfile: " + why);
    }
}

Pidfile::~Pidfile() {
    if (fd_ < 0) return;
    ::unlink(path_.c_str());  // while still locked: no other supervisor can own it yet
    ::close(fd_);
}

}  // namespace dbsup
