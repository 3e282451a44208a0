// The real binary under a stand-in for systemd: a unix datagram socket set as
// NOTIFY_SOCKET, read for what the supervisor says at start, reload, stop and
// while it runs (the watchdog).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using nlohmann::json;

class NotifySocket {
public:
    explicit NotifySocket(std::string path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    ~NotifySocket() { ::close(fd_); }
    const std::string& path() const { return path_; }

    /// Reads datagrams until one satisfies `ok` (returned) or `limit` passes ("").
    std::string wait_for(const std::function<bool(const std::string&)>& ok,
                         std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) != 1) continue;
            char buffer[4096];
            const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
            if (n <= 0) continue;
            std::string message(buffer, static_cast<std::size_t>(n));
            seen_.push_back(message);
            if (ok(message)) return message;
        }
        ADD_FAILURE() << "no such notification; seen: " << seen().substr(0, 2000);
        return "";
    }
    std::string wait_for(const std::string& exact, std::chrono::milliseconds limit = 10s) {
        return wait_for([&](const std::string& m) { return m == exact; }, limit);
    }
    std::string seen() const {
        std::string all;
        for (const auto& m : seen_) all += "[" + m + "] ";
        return all;
    }
    std::size_t count(const std::string& exact) const {
        return static_cast<std::size_t>(std::count(seen_.begin(), seen_.end(), exact));
    }

private:
    std::string path_;
    int fd_ = -1;
    std::vector<std::string> seen_;
};

bool all_ready(const json& d, std::size_t n) {
    if (d["supervisor"]["workers_alive"] != n) return false;
    for (const auto& w : d["workers"])
        if (w["state"] != "ready") return false;
    return true;
}

std::uint64_t monotonic_usec() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000;
}

std::string environment_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(SystemdNotify, ReadyStatusWatchdogReloadingAndStoppingAsSystemdExpects) {
    TempDir dir;
    NotifySocket systemd((dir.path() / "notify").string());
    SupervisorProcess sup(dir, "", {"--workers", "2"},
                          {"NOTIFY_SOCKET=" + systemd.path(), "WATCHDOG_USEC=200000"});

    systemd.wait_for("READY=1");
    // READY=1 means every worker is ready: the next stats (every 50 ms) say so.
    sup.wait_for([](const json& d) { return all_ready(d, 2); }, 300ms);
    const std::string status = systemd.wait_for(
        [](const std::string& m) { return m.rfind("STATUS=done ", 0) == 0; });
    EXPECT_NE(status.find("workers 2/2"), std::string::npos) << status;

    // Every 100 ms (half of WATCHDOG_USEC): five within a second at least.
    const auto watch_start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) systemd.wait_for("WATCHDOG=1", 1s);
    EXPECT_LT(std::chrono::steady_clock::now() - watch_start, 1s);

    const json before = sup.stats();
    for (const auto& w : before["workers"]) {
        const std::string env = environment_of(w["pid"].get<pid_t>());
        EXPECT_EQ(env.find("NOTIFY_SOCKET="), std::string::npos) << "a worker may speak for the service";
        EXPECT_EQ(env.find("WATCHDOG_USEC="), std::string::npos);
    }

    const std::uint64_t hup_at = monotonic_usec();
    sup.signal(SIGHUP);
    const std::string reloading =
        systemd.wait_for([](const std::string& m) { return m.rfind("RELOADING=1\n", 0) == 0; });
    const auto stamp = reloading.find("MONOTONIC_USEC=");
    ASSERT_NE(stamp, std::string::npos) << reloading;
    const std::uint64_t usec = std::stoull(reloading.substr(stamp + 15));
    EXPECT_GE(usec, hup_at);
    EXPECT_LT(usec, monotonic_usec());
    systemd.wait_for("READY=1");
    // The workers were replaced (generation 2) before READY=1 came back.
    const json after = sup.stats();
    for (const auto& w : after["workers"]) EXPECT_EQ(w["generation"], 2) << after.dump();

    sup.signal(SIGTERM);
    systemd.wait_for("STOPPING=1");
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_EQ(systemd.count("READY=1"), 2u) << systemd.seen().substr(0, 2000);
}

// READY=1 waits for every worker: with one that keeps failing at start, it never comes.
TEST(SystemdNotify, NoReadyWhileAWorkerCannotStart) {
    TempDir dir;
    NotifySocket systemd((dir.path() / "notify").string());
    SupervisorProcess sup(dir, "", {"--workers", "2"},
                          {"NOTIFY_SOCKET=" + systemd.path(), "DBSUP_TEST_WORKER_EXIT=1@1"});
    // Two seconds of stats writes (STATUS=) with slot 0 ready and slot 1 respawning.
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < until)
        systemd.wait_for([](const std::string& m) { return m.rfind("STATUS=", 0) == 0; }, 1s);
    EXPECT_EQ(systemd.count("READY=1"), 0u) << systemd.seen().substr(0, 2000);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// Outside systemd nothing changes; a bad NOTIFY_SOCKET is said, not fatal.
TEST(SystemdNotify, ANotifySocketThatIsNotAPathIsReportedAndIgnored) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {"NOTIFY_SOCKET=nonsense"});
    sup.wait_for([](const json& d) { return all_ready(d, 1); });
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

}  // namespace
}  // namespace dbsup::test
