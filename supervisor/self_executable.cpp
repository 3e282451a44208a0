#include "supervisor/self_executable.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

namespace dbsup {

SelfExecutable::SelfExecutable() {
    // O_PATH: exec needs no read permission on the file, only the reference.
    fd_ = ::open("/proc/self/exe", O_PATH | O_CLOEXEC);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open /proc/self/exe");
    exec_path_ = "/proc/self/fd/" + std::to_string(fd_);
    std::error_code ignored;
    path_ = std::filesystem::read_symlink("/proc/self/exe", ignored).string();
}

SelfExecutable::~SelfExecutable() { ::close(fd_); }

}  // namespace dbsup
