#include "shared/log_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace dbsup {

void LogFile::redirect_stderr(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        throw std::runtime_error("--log-file " + path + ": cannot open: " + std::strerror(errno));
    // dup2 swaps fd 2 atomically: a concurrent write goes to the old file or the new one.
    bool ok = ::dup2(fd, STDERR_FILENO) >= 0;
    int saved = errno;
    ::close(fd);
    if (!ok)
        throw std::runtime_error("--log-file " + path + ": cannot redirect: " + std::strerror(saved));
}

}  // namespace dbsup
