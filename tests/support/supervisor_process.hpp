// The real dbsupervisor binary, run by end-to-end tests: a supervisor process
// started with a config file written into a temp dir, signalled, waited for,
// and read back through its stats file; and one-shot commands with their output.
// Header-only because DBSUP_BINARY is defined by each test target.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_databases.hpp"

namespace dbsup::test {

using namespace std::chrono_literals;

// A loopback port nothing listens on once this returns.
inline int free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

class SupervisorProcess {
public:
    /// supervisor_toml: more keys of [supervisor]; rest_toml: the other sections,
    /// by default one SQLite database `main` in dir.
    SupervisorProcess(const TempDir& dir, const std::string& supervisor_toml,
                      std::vector<std::string> args, std::vector<std::string> env = {},
                      std::string rest_toml = "", const std::string& name = "dbsup",
                      std::string binary = DBSUP_BINARY)
        : stats_((dir.path() / (name + "-stats.json")).string()) {
        if (rest_toml.empty())
            rest_toml = "[databases.main]\nurl = \"sqlite:///" + (dir.path() / "main.db").string() +
                        "\"\n";
        config_ = (dir.path() / (name + ".toml")).string();
        rewrite_config(supervisor_toml, rest_toml);
        const std::string& config = config_;
        pid_ = fork();
        if (pid_ == 0) {
            for (auto& e : env) putenv(e.data());
            std::vector<std::string> all = {binary, "--config", config, "--log-level", "warn"};
            all.insert(all.end(), args.begin(), args.end());
            std::vector<char*> argv;
            for (auto& a : all) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(binary.c_str(), argv.data());
            _exit(127);
        }
    }
    ~SupervisorProcess() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }

    /// Writes the config file again (the supervisor reads it on SIGHUP).
    void rewrite_config(const std::string& supervisor_toml, const std::string& rest_toml) const {
        std::ofstream(config_) << "[supervisor]\nstats_file = \"" << stats_
                               << "\"\nstats_interval_ms = 50\n" << supervisor_toml << "\n"
                               << rest_toml;
    }
    pid_t pid() const { return pid_; }
    const std::string& stats_path() const { return stats_; }
    void signal(int sig) const { ::kill(pid_, sig); }

    /// The stats document, or null if it is not (yet) readable.
    nlohmann::json stats() const {
        std::ifstream in(stats_);
        if (!in) return nullptr;
        return nlohmann::json::parse(in, nullptr, false);
    }
    /// Polls the stats file until `ok` holds; the last document read.
    nlohmann::json wait_for(const std::function<bool(const nlohmann::json&)>& ok,
                  std::chrono::milliseconds limit = 10s) const {
        auto deadline = std::chrono::steady_clock::now() + limit;
        nlohmann::json doc;
        while (std::chrono::steady_clock::now() < deadline) {
            doc = stats();
            if (!doc.is_null() && !doc.is_discarded() && ok(doc)) return doc;
            std::this_thread::sleep_for(20ms);
        }
        ADD_FAILURE() << "condition not met; last stats: " << doc.dump();
        return doc;
    }
    /// Waits for the supervisor to exit; its exit code, or -signal.
    int wait_exit(std::chrono::milliseconds limit = 20s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        int status = 0;
        while (std::chrono::steady_clock::now() < deadline) {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                reaped_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
            }
            std::this_thread::sleep_for(10ms);
        }
        return 999;
    }

private:
    std::string stats_;
    std::string config_;
    pid_t pid_ = -1;
    bool reaped_ = false;
};

struct CommandRun {
    int exit_code;
    std::string output;  // stdout and stderr together
};

/// Runs `env dbsupervisor args` through the shell and collects its output.
inline CommandRun run_command(const std::string& args, const std::string& env = "") {
    std::string command = env + " " DBSUP_BINARY " " + args + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    std::string output;
    std::array<char, 4096> buffer{};
    while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
        output.append(buffer.data(), n);
    int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace dbsup::test
