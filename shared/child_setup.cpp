#include "shared/child_setup.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <unistd.h>

namespace dbsup::child_setup {

void close_on_exec_above_stderr() noexcept {
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
    const long max = ::sysconf(_SC_OPEN_MAX);  // kernels before 5.11: one by one
    for (int fd = 3; fd < (max > 0 ? max : 1024); ++fd) {
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
}

void default_signals() noexcept {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
}

}  // namespace dbsup::child_setup
