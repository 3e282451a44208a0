// systemd's notify protocol (sd_notify(3)) without libsystemd: each message is
// one datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
// $NOTIFY_SOCKET (a leading '@' means the abstract namespace). Without that
// variable every call does nothing, so the supervisor behaves the same outside
// systemd. The variables are taken out of the environment at construction:
// workers and command tasks must not speak for the service.
//
// Thread-safety: one thread (the supervisor's event loop).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace dbsup {

class SystemdNotifier {
public:
    SystemdNotifier();
    ~SystemdNotifier();
    SystemdNotifier(const SystemdNotifier&) = delete;
    SystemdNotifier& operator=(const SystemdNotifier&) = delete;

    bool enabled() const noexcept { return fd_ >= 0; }
    /// How often to send WATCHDOG=1: half of $WATCHDOG_USEC when that is set
    /// for this process ($WATCHDOG_PID, if set, is ours).
    std::optional<std::chrono::microseconds> watchdog_interval() const noexcept {
        return watchdog_interval_;
    }
    /// Sends `state` as one datagram; a failure is logged once, never thrown.
    void notify(std::string_view state) noexcept;
    /// RELOADING=1 with the CLOCK_MONOTONIC time systemd asks for.
    void reloading() noexcept;

private:
    int fd_ = -1;
    std::string address_;
    std::optional<std::chrono::microseconds> watchdog_interval_;
    bool failure_logged_ = false;
};

}  // namespace dbsup
