// The real dbsupervisor binary as a supervisor: real worker processes, real
// signals, the real stats file and shared-memory segment.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::size_t alive(const json& doc) { return doc["supervisor"]["workers_alive"].get<std::size_t>(); }

std::set<pid_t> worker_pids(const json& doc) {
    std::set<pid_t> pids;
    for (const auto& w : doc["workers"]) pids.insert(w["pid"].get<pid_t>());
    return pids;
}

// Running, not a zombie waiting for whoever inherited it to reap it.
bool process_exists(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_field, comm, state;
    if (!(stat >> pid_field >> comm >> state)) return false;
    return state != "Z";
}

// The threads of a process, from /proc/<pid>/status.
int thread_count(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    return -1;
}

bool all_ready(const json& doc, std::size_t n) {
    if (alive(doc) != n) return false;
    for (const auto& w : doc["workers"])
        if (w["state"] != "ready") return false;
    return true;
}

TEST(Supervisor, EightWorkersAreAliveAndStopCleanlyOnSigterm) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "8"});
    auto start = std::chrono::steady_clock::now();
    json doc = sup.wait_for([](const json& d) { return all_ready(d, 8); });
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // 2 s in the plain build
    std::set<pid_t> pids = worker_pids(doc);
    ASSERT_EQ(pids.size(), 8u);
    for (pid_t p : pids) EXPECT_TRUE(process_exists(p));
    std::string segment = "/dev/shm/dbsup-" + std::to_string(sup.pid());
    EXPECT_TRUE(std::filesystem::exists(segment));

    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    for (pid_t p : pids) EXPECT_FALSE(process_exists(p)) << "worker " << p << " outlived";
    EXPECT_FALSE(std::filesystem::exists(segment));
    json final_doc = sup.stats();
    EXPECT_EQ(final_doc["supervisor"]["state"], "stopped");
    EXPECT_EQ(alive(final_doc), 0u);
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "dbsup-stats.prom"));
}

TEST(Supervisor, AKilledWorkerIsRespawnedWithAHigherGeneration) {
    TempDir dir;
    // Slow demo jobs keep both workers counting while one of them is killed.
    SupervisorProcess sup(dir, "restart_backoff_ms = [10, 1000]",
                          {"--workers", "2", "--demo", "20000"});
    json before = sup.wait_for([](const json& d) {
        return all_ready(d, 2) && d["jobs"]["succeeded_total"].get<int>() > 0;
    });
    pid_t victim = before["workers"][0]["pid"];
    std::size_t slot = before["workers"][0]["slot"];
    ::kill(victim, SIGKILL);
    std::uint64_t last_succeeded = 0, last_claimed = 0;
    json after = sup.wait_for([&](const json& d) {
        // Aggregated counters never go backwards, the dead worker's included.
        auto succeeded = d["jobs"]["succeeded_total"].get<std::uint64_t>();
        auto claimed = d["jobs"]["claimed_total"].get<std::uint64_t>();
        EXPECT_GE(succeeded, last_succeeded);
        EXPECT_GE(claimed, last_claimed);
        last_succeeded = succeeded;
        last_claimed = claimed;
        if (!all_ready(d, 2)) return false;
        for (const auto& w : d["workers"])
            if (w["slot"] == slot && w["pid"] != victim) return true;
        return false;
    });
    for (const auto& w : after["workers"]) {
        if (w["slot"] == slot) {
            EXPECT_EQ(w["generation"], 2);
        }
    }
    EXPECT_EQ(after["supervisor"]["restarts_total"], 1);
    EXPECT_GE(after["supervisor"]["uptime_seconds"].get<double>(),
              before["supervisor"]["uptime_seconds"].get<double>());
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

TEST(Supervisor, AWorkerWithoutHeartbeatIsKilledAndReplaced) {
    TempDir dir;
    SupervisorProcess sup(dir, "worker_timeout_s = 1\nrestart_backoff_ms = [10, 100]",
                          {"--workers", "1"}, {"DBSUP_TEST_FREEZE_HEARTBEAT=1"});
    json first = sup.wait_for([](const json& d) { return alive(d) == 1; });
    pid_t hung = first["workers"][0]["pid"];
    sup.wait_for([&](const json& d) { return alive(d) == 1 && d["workers"][0]["pid"] != hung; },
                 8s);
    EXPECT_FALSE(process_exists(hung));
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

TEST(Supervisor, TtinAndTtouChangeTheWorkerCount) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"});
    sup.wait_for([](const json& d) { return all_ready(d, 2); });
    sup.signal(SIGTTIN);
    json more = sup.wait_for([](const json& d) { return all_ready(d, 3); });
    EXPECT_EQ(more["supervisor"]["workers_configured"], 3);
    sup.signal(SIGTTOU);  // one at a time: the kernel merges a signal already pending
    sup.wait_for([](const json& d) { return all_ready(d, 2); });
    sup.signal(SIGTTOU);
    json fewer = sup.wait_for([](const json& d) { return all_ready(d, 1); });
    EXPECT_EQ(fewer["supervisor"]["workers_configured"], 1);
    EXPECT_EQ(fewer["supervisor"]["restarts_total"], 0) << "a worker stopped by TTOU is not a crash";
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

TEST(Supervisor, WorkersDieWithAKilledSupervisorAndTheStaleSegmentIsCleaned) {
    TempDir dir;
    std::string segment;
    std::set<pid_t> pids;
    {
        SupervisorProcess sup(dir, "", {"--workers", "3"});
        pids = worker_pids(sup.wait_for([](const json& d) { return all_ready(d, 3); }));
        segment = "/dev/shm/dbsup-" + std::to_string(sup.pid());
        sup.signal(SIGKILL);
        EXPECT_EQ(sup.wait_exit(), -SIGKILL);
    }
    std::this_thread::sleep_for(1s);
    for (pid_t p : pids) EXPECT_FALSE(process_exists(p)) << "orphan worker " << p;
    EXPECT_TRUE(std::filesystem::exists(segment)) << "nothing stale to clean: the test proves nothing";
    SupervisorProcess next(dir, "", {"--workers", "1"});
    next.wait_for([](const json& d) { return all_ready(d, 1); });
    EXPECT_FALSE(std::filesystem::exists(segment));
    next.signal(SIGTERM);
    EXPECT_EQ(next.wait_exit(), 0);
}

TEST(Supervisor, ASecondSupervisorOnTheSamePidfileIsRefused) {
    TempDir dir;
    std::string pidfile = (dir.path() / "sup.pid").string();
    SupervisorProcess first(dir, "", {"--workers", "1", "--pidfile", pidfile});
    first.wait_for([](const json& d) { return all_ready(d, 1); });
    TempDir other_dir;
    SupervisorProcess second(other_dir, "", {"--workers", "1", "--pidfile", pidfile});
    EXPECT_EQ(second.wait_exit(), 2);
    first.signal(SIGTERM);
    EXPECT_EQ(first.wait_exit(), 0);
    EXPECT_FALSE(std::filesystem::exists(pidfile));
}

// The pidfile's lock decides, not the pid in it: a file left by a crash whose
// pid now belongs to some other live process is taken over.
TEST(Supervisor, ALeftoverPidfileNamingALiveStrangerIsTakenOver) {
    TempDir dir;
    std::string pidfile = (dir.path() / "sup.pid").string();
    std::ofstream(pidfile) << "1\n";  // init: alive, and not a supervisor
    SupervisorProcess sup(dir, "", {"--workers", "1", "--pidfile", pidfile});
    sup.wait_for([](const json& d) { return all_ready(d, 1); });
    std::ifstream in(pidfile);
    pid_t written = 0;
    in >> written;
    EXPECT_EQ(written, sup.pid());
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// A symlink planted at the pidfile's path is refused; its target is untouched.
TEST(Supervisor, APidfileThatIsASymlinkIsRefused) {
    TempDir dir;
    std::string target = (dir.path() / "precious").string();
    std::ofstream(target) << "keep me\n";
    std::string pidfile = (dir.path() / "sup.pid").string();
    std::filesystem::create_symlink(target, pidfile);
    CommandRun r = run_command("--pidfile " + pidfile + " --stats-file " +
                                   (dir.path() / "s.json").string(),
                               "DATABASE_NAME=" + (dir.path() / "main.db").string());
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("cannot open the pidfile"), std::string::npos) << r.output;
    std::ifstream in(target);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "keep me");
}

TEST(Supervisor, ACrashLoopingWorkerIsBackedOffNotSpun) {
    TempDir dir;
    SupervisorProcess sup(dir, "restart_backoff_ms = [100, 400]", {"--workers", "1"},
                          {"DBSUP_TEST_WORKER_EXIT=1"});
    std::this_thread::sleep_for(2s);
    json doc = sup.stats();
    ASSERT_FALSE(doc.is_null());
    // Backoff 100, 200, 400, 400, ... ms: about 6 restarts in 2 s; spinning would be hundreds.
    auto restarts = doc["supervisor"]["restarts_total"].get<int>();
    EXPECT_GE(restarts, 2);
    EXPECT_LE(restarts, 9);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

TEST(Supervisor, AConfigurationErrorInEveryWorkerStopsTheSupervisorWithExit2) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {"DBSUP_TEST_WORKER_EXIT=2"});
    EXPECT_EQ(sup.wait_exit(), 2);
}

// A slot stopped for a configuration error no longer counts: TTOU must not
// take away the last worker still running (nor step past the slots, which
// crashed the supervisor when no slot was left).
TEST(Supervisor, TtouAfterAConfigurationErrorKeepsTheLastWorker) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {"DBSUP_TEST_WORKER_EXIT=2@1"});
    sup.wait_for([](const json& d) {
        return d["supervisor"]["workers_configured"] == 1 && d["supervisor"]["workers_alive"] == 1;
    });
    sup.signal(SIGTTOU);
    std::this_thread::sleep_for(500ms);  // the loop acts within one 100 ms tick
    json doc = sup.stats();
    EXPECT_EQ(doc["supervisor"]["workers_alive"], 1) << doc["supervisor"].dump();
    EXPECT_EQ(doc["supervisor"]["workers_configured"], 1) << doc["supervisor"].dump();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

TEST(Supervisor, AMissingStatsDirectoryIsAClearError) {
    TempDir dir;
    std::string command = std::string(DBSUP_BINARY) +
                          " --workers 1 --stats-file /nonexistent-dir/s.json 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    char buffer[512] = {};
    std::string out;
    while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
    int status = pclose(pipe);
    EXPECT_EQ(WEXITSTATUS(status), 2);
    EXPECT_NE(out.find("supervisor.stats_file: directory /nonexistent-dir does not exist"),
              std::string::npos)
        << out;
}

TEST(Supervisor, StatsCommandPrintsATableAndTheJson) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"});
    sup.wait_for([](const json& doc) { return all_ready(doc, 2); });
    CommandRun table = run_command("stats --file " + sup.stats_path());
    EXPECT_EQ(table.exit_code, 0) << table.output;
    EXPECT_NE(table.output.find("workers 2/2"), std::string::npos) << table.output;
    EXPECT_NE(table.output.find("POOL"), std::string::npos) << table.output;
    CommandRun raw = run_command("stats --json --file " + sup.stats_path());
    EXPECT_EQ(json::parse(raw.output)["supervisor"]["workers_alive"], 2) << raw.output;
    CommandRun missing = run_command("stats --file " + (dir.path() / "nope.json").string());
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.output.find("is a supervisor running"), std::string::npos) << missing.output;
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

ino_t inode_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A package upgrade replaces the binary under a running supervisor: a worker
// it respawns must still be the old binary, the one the supervisor runs.
TEST(Supervisor, ARespawnedWorkerRunsTheSupervisorsBinaryEvenOnceItIsReplaced) {
    TempDir dir;
    const std::string binary = (dir.path() / "dbsupervisor").string();
    std::filesystem::copy_file(DBSUP_BINARY, binary);
    const ino_t old_inode = inode_of(binary);
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, "", "dbsup", binary);
    json doc = sup.wait_for([](const json& d) { return all_ready(d, 1); });
    const pid_t first = doc["workers"][0]["pid"];
    EXPECT_EQ(inode_of("/proc/" + std::to_string(first) + "/exe"), old_inode);

    // The new "version" would exit at once: a worker started from it never gets ready.
    const std::string replacement = binary + ".new";
    std::ofstream(replacement) << "#!/bin/sh\nexit 3\n";
    std::filesystem::permissions(replacement, std::filesystem::perms::owner_all);
    std::filesystem::rename(replacement, binary);
    ASSERT_NE(inode_of(binary), old_inode);

    ::kill(first, SIGKILL);
    doc = sup.wait_for([&](const json& d) {
        return all_ready(d, 1) && d["workers"][0]["pid"] != first;
    });
    const pid_t second = doc["workers"][0]["pid"];
    EXPECT_EQ(inode_of("/proc/" + std::to_string(second) + "/exe"), old_inode);
    std::ifstream comm("/proc/" + std::to_string(second) + "/comm");
    std::string name;
    comm >> name;
    EXPECT_EQ(name, "dbsupervisor");  // not the descriptor's number it was spawned through
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

std::vector<json> json_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<json> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(json::parse(line, nullptr, false));
        EXPECT_FALSE(lines.back().is_discarded()) << "not JSON: " << line;
    }
    return lines;
}

// For log shippers: every line one object; a job's lines carry the job.
TEST(Supervisor, JsonLogsAreOneObjectPerLineWithTheJobsFields) {
    TempDir dir;
    const std::string log = (dir.path() / "dbsup.log").string();
    const std::string tasks =
        "[databases.main]\nurl = \"sqlite:///" + (dir.path() / "main.db").string() +
        "\"\n[tasks.boom]\ncommand = [\"/bin/sh\", \"-c\", "
        "\"echo 'said \\\"no\\\" <script>'; exit 1\"]\nmax_attempts = 1\n";
    SupervisorProcess sup(dir, "", {"--workers", "1", "--log-file", log, "--log-format", "json",
                                    "--log-level", "info"},
                          {}, tasks);
    json doc = sup.wait_for([](const json& d) { return all_ready(d, 1); });
    const pid_t worker = doc["workers"][0]["pid"];
    CommandRun enqueued = run_command("--config " + (dir.path() / "dbsup.toml").string() +
                                      " enqueue boom --queue default");
    ASSERT_EQ(enqueued.exit_code, 0) << enqueued.output;
    std::smatch uuid;
    ASSERT_TRUE(std::regex_search(enqueued.output, uuid, std::regex("[0-9a-f]{8}-[0-9a-f-]{27}")))
        << enqueued.output;
    const std::string id = uuid.str();
    sup.wait_for([](const json& d) { return d["jobs"]["dead_total"] == 1; });
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);

    const std::vector<json> lines = json_lines(log);
    ASSERT_GT(lines.size(), 3u);
    bool job_line = false, supervisor_line = false;
    for (const json& line : lines) {
        if (line.is_discarded()) continue;
        for (const char* key : {"time", "level", "message", "pid"}) EXPECT_TRUE(line.contains(key)) << line;
        EXPECT_TRUE(std::regex_match(line["time"].get<std::string>(),
                                     std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
            << line;
        if (line["pid"] == sup.pid()) {
            supervisor_line = true;
            EXPECT_FALSE(line.contains("slot")) << line;
        }
        const std::string message = line["message"];
        if (message.find("is dead after 1 attempt") == std::string::npos) continue;
        job_line = true;
        EXPECT_EQ(line["level"], "warning") << line;
        EXPECT_EQ(line["pid"], worker) << line;
        EXPECT_EQ(line["slot"], 0) << line;
        EXPECT_EQ(line["job_id"], id) << line;
        EXPECT_EQ(line["task"], "boom") << line;
        EXPECT_EQ(line["queue"], "default") << line;
        EXPECT_GE(line["duration_ms"].get<double>(), 0.0) << line;
        EXPECT_NE(message.find("said \"no\" <script>"), std::string::npos) << message;
    }
    EXPECT_TRUE(job_line) << "no line about the dead job";
    EXPECT_TRUE(supervisor_line);
}

// Under systemd, journald reads stderr: "<N>" carries each line's level.
TEST(Supervisor, UnderJournaldTextLinesStartWithTheirSyslogPriority) {
    TempDir dir;
    const std::string err = (dir.path() / "stderr").string();
    CommandRun r = run_command(
        "run --workers 1 --stats-file " + (dir.path() / "stats.json").string() + " 2>>" + err +
            "; exit $?",
        ": >" + err + "; export JOURNAL_STREAM=$(stat -c %d:%i " + err + "); DATABASE_NAME=" +
            (dir.path() / "x.db").string() + " timeout --preserve-status -s TERM 2");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::ifstream in(err);
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first.rfind("<6>info database 'main' ok", 0), 0u) << first;
}

// logrotate's way: move the file away, send USR1; later lines go to a new file.
TEST(Supervisor, Usr1ReopensTheLogFile) {
    TempDir dir;
    std::string log = (dir.path() / "dbsup.log").string();
    SupervisorProcess sup(dir, "", {"--workers", "1", "--log-file", log});
    json doc = sup.wait_for([](const json& d) { return all_ready(d, 1); });
    std::filesystem::rename(log, log + ".1");
    sup.signal(SIGUSR1);
    std::this_thread::sleep_for(300ms);
    ::kill(doc["workers"][0]["pid"].get<pid_t>(), SIGKILL);
    sup.wait_for([](const json& d) { return d["supervisor"]["restarts_total"] == 1; });
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("terminated by signal 9"), std::string::npos) << "new log: " << text;
    std::ifstream old(log + ".1");
    std::string old_text((std::istreambuf_iterator<char>(old)), std::istreambuf_iterator<char>());
    EXPECT_EQ(old_text.find("terminated by signal 9"), std::string::npos) << old_text;
}

// HUP with a valid changed file: every worker is replaced by one that reads
// the new configuration; with an invalid file: the old workers keep running.
TEST(Supervisor, HupReplacesTheWorkersOrKeepsThemWhenTheFileIsBad) {
    TempDir dir;
    std::string db = "[databases.main]\nurl = \"sqlite:///" + (dir.path() / "main.db").string() + "\"\n";
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {}, db);
    json before = sup.wait_for([](const json& d) { return all_ready(d, 2); });
    std::set<pid_t> old_pids = worker_pids(before);

    sup.rewrite_config("", db + "[databases.main.colour]\n");  // invalid: unknown key
    sup.signal(SIGHUP);
    std::this_thread::sleep_for(1s);
    json kept = sup.wait_for([](const json& d) { return all_ready(d, 2); });
    EXPECT_EQ(worker_pids(kept), old_pids) << "a bad file replaced the workers";

    const int old_threads = thread_count(*old_pids.begin());  // [worker] threads = 4
    sup.rewrite_config("", db + "[worker]\nthreads = 2\n");
    sup.signal(SIGHUP);
    json after = sup.wait_for(
        [&](const json& d) {
            if (!all_ready(d, 2)) return false;
            for (pid_t p : worker_pids(d))
                if (old_pids.count(p)) return false;
            return true;
        },
        20s);
    for (const auto& w : after["workers"]) EXPECT_EQ(w["generation"], 2) << after.dump();
    // The new workers run the new configuration: two job threads, not four.
    EXPECT_EQ(old_threads - thread_count(*worker_pids(after).begin()), 2)
        << "the replaced workers kept the old [worker] threads";
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// A drain waits for running jobs; a second TERM stops waiting (the workers are
// killed, their claims put back) and QUIT does not wait at all.
TEST(Supervisor, ASecondTermOrAQuitEndsADrainAtOnce) {
    for (int second : {SIGTERM, SIGQUIT}) {
        TempDir dir;
        std::string db =
            "[databases.main]\nurl = \"sqlite:///" + (dir.path() / "main.db").string() + "\"\n";
        SupervisorProcess sup(dir, "graceful_timeout_s = 60", {"--workers", "1"}, {}, db);
        sup.wait_for([](const json& d) { return all_ready(d, 1); });
        CommandRun r = run_command("--config " + (dir.path() / "dbsup.toml").string() +
                                   " enqueue sleep --payload '{\"ms\": 60000}'");
        ASSERT_EQ(r.exit_code, 0) << r.output;
        sup.wait_for([](const json& d) { return d["jobs"]["claimed_total"] >= 1; });
        sup.signal(SIGTERM);
        sup.wait_for([](const json& d) { return d["supervisor"]["state"] == "draining"; });
        const auto at = std::chrono::steady_clock::now();
        sup.signal(second);
        EXPECT_EQ(sup.wait_exit(20s), 0) << strsignal(second);
        EXPECT_LT(std::chrono::steady_clock::now() - at, 5s) << strsignal(second);
    }
}

}  // namespace
}  // namespace dbsup::test
