#include "supervisor/systemd_notifier.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace dbsup {
namespace {

std::optional<std::uint64_t> number_from(const char* text) {
    if (!text) return std::nullopt;
    std::uint64_t value = 0;
    const char* end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, value);
    if (ec != std::errc() || ptr != end) return std::nullopt;
    return value;
}

// sd_watchdog_enabled(3): WATCHDOG_PID, when set, must be this process.
std::optional<std::chrono::microseconds> watchdog_from_environment() {
    const auto usec = number_from(std::getenv("WATCHDOG_USEC"));
    if (!usec || *usec == 0) return std::nullopt;
    if (const char* pid = std::getenv("WATCHDOG_PID"))
        if (number_from(pid) != static_cast<std::uint64_t>(::getpid())) return std::nullopt;
    return std::chrono::microseconds(*usec / 2);
}

}  // namespace

SystemdNotifier::SystemdNotifier() {
    const char* socket_path = std::getenv("NOTIFY_SOCKET");
    if (socket_path && (socket_path[0] == '/' || socket_path[0] == '@') &&
        std::strlen(socket_path) < sizeof(sockaddr_un::sun_path)) {
        address_ = socket_path;
        watchdog_interval_ = watchdog_from_environment();
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) spdlog::warn("systemd: cannot open a socket to notify: {}", std::strerror(errno));
    } else if (socket_path) {
        spdlog::warn("systemd: NOTIFY_SOCKET '{}' is not a unix socket path; not notifying",
                     socket_path);
    }
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
}

SystemdNotifier::~SystemdNotifier() {
    if (fd_ >= 0) ::close(fd_);
}

void SystemdNotifier::notify(std::string_view state) noexcept {
    if (fd_ < 0) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    if (address_[0] == '@') addr.sun_path[0] = '\0';  // abstract: the length bounds the name
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    if (::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr), length) >= 0)
        return;
    if (!std::exchange(failure_logged_, true))
        spdlog::warn("systemd: cannot notify {}: {}", address_, std::strerror(errno));
}

void SystemdNotifier::reloading() noexcept {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 +
                      static_cast<std::uint64_t>(now.tv_nsec) / 1000;
    notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

}  // namespace dbsup
