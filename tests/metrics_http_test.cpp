// `--metrics-listen`: the real supervisor serves /metrics (checked with the
// Prometheus project's own text-format parser, python3-prometheus-client) and
// /healthz over HTTP; a bad address is refused before anything starts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using nlohmann::json;

// The parser reads the text and prints "name value" for each sample it understood.
constexpr const char* kParse =
    "import sys\n"
    "from prometheus_client.parser import text_string_to_metric_families\n"
    "for family in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
    "    for s in family.samples:\n"
    "        print(s.name, s.value)\n";

std::string shell(const std::string& command) {
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    int status = pclose(pipe);
    if (status != 0) ADD_FAILURE() << "exit " << status << ": " << command << "\n" << out;
    return out;
}

TEST(MetricsHttp, ServesParseableMetricsAndHealth) {
    TempDir dir;
    const std::string address = "127.0.0.1:" + std::to_string(free_loopback_port());
    SupervisorProcess sup(dir, "", {"--workers", "2", "--metrics-listen", address});
    // Alive is not yet published: wait for the workers' pools too.
    sup.wait_for([](const json& d) {
        return d["supervisor"]["workers_alive"] == 2 && !d["pools"].empty();
    });
    const std::string url = "http://" + address;

    std::string health = shell("curl -s -w ' %{http_code}' " + url + "/healthz");
    EXPECT_NE(health.find("\"status\":\"ok\""), std::string::npos) << health;
    EXPECT_NE(health.find(" 200"), std::string::npos) << health;

    const std::string text = (dir.path() / "metrics.txt").string();
    const std::string script = (dir.path() / "parse.py").string();
    std::ofstream(script) << kParse;
    shell("curl -s -f -o " + text + " " + url + "/metrics");
    std::string samples = shell("/usr/bin/python3 " + script + " " + text);
    EXPECT_NE(samples.find("dbsup_workers_alive 2.0"), std::string::npos) << samples;
    EXPECT_NE(samples.find("dbsup_jobs_succeeded_total"), std::string::npos) << samples;
    EXPECT_NE(samples.find("dbsup_database_up 1.0"), std::string::npos) << samples;
    EXPECT_NE(samples.find("dbsup_pool_size"), std::string::npos) << samples;

    EXPECT_EQ(shell("curl -s -o /dev/null -w '%{http_code}' " + url + "/nope"), "404");
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// The socket of the listener on `port` ("socket:[inode]"), from /proc/net/tcp.
std::string listener_socket(int port) {
    std::ifstream tcp("/proc/net/tcp");
    char wanted[16];
    std::snprintf(wanted, sizeof wanted, ":%04X", port);
    for (std::string line; std::getline(tcp, line);) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
        fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
            timeout >> inode;
        if (local.ends_with(wanted) && state == "0A") return "socket:[" + inode + "]";
    }
    return "";
}

// What the process's descriptors point at (sockets as "socket:[inode]").
std::vector<std::string> descriptors(pid_t pid) {
    std::vector<std::string> out;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        std::error_code ec;
        auto target = std::filesystem::read_symlink(fd.path(), ec);
        if (!ec) out.push_back(target.string());
    }
    return out;
}

// A worker inherits none of the supervisor's descriptors beyond stdio: with
// the listener, a restarted supervisor could not bind its port while old
// workers drain.
TEST(MetricsHttp, WorkersDoNotInheritTheListeningSocket) {
    TempDir dir;
    const int port = free_loopback_port();
    SupervisorProcess sup(dir, "", {"--workers", "2", "--metrics-listen",
                                    "127.0.0.1:" + std::to_string(port)});
    json doc = sup.wait_for([](const json& d) { return d["supervisor"]["workers_alive"] == 2; });
    const std::string listener = listener_socket(port);
    ASSERT_FALSE(listener.empty()) << "nothing listens on " << port;
    auto of_supervisor = descriptors(sup.pid());
    EXPECT_NE(std::find(of_supervisor.begin(), of_supervisor.end(), listener), of_supervisor.end());
    for (const json& w : doc["workers"]) {
        auto of_worker = descriptors(w["pid"].get<pid_t>());
        EXPECT_EQ(std::find(of_worker.begin(), of_worker.end(), listener), of_worker.end())
            << "worker " << w["pid"] << " holds the listener";
    }
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// A request header beyond 8 KiB is refused, connections beyond 32 are closed
// at once, and the server keeps answering once they are gone.
TEST(MetricsHttp, OversizedRequestsAndConnectionFloodsAreBounded) {
    TempDir dir;
    const int port = free_loopback_port();
    const std::string url = "http://127.0.0.1:" + std::to_string(port);
    SupervisorProcess sup(dir, "", {"--workers", "1", "--metrics-listen",
                                    "127.0.0.1:" + std::to_string(port)});
    sup.wait_for([](const json& d) { return d["supervisor"]["workers_alive"] == 1; });
    std::string big = shell("curl -s -o /dev/null -w '%{http_code}' -H 'X-Big: " +
                            std::string(20000, 'a') + "' " + url + "/metrics || true");
    EXPECT_NE(big, "200") << "a 20 kB header was read";
    std::vector<int> idle;
    for (int i = 0; i < 40; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        idle.push_back(fd);
    }
    std::this_thread::sleep_for(200ms);  // all accepted: 32 kept waiting, 8 closed
    int closed = 0;
    for (int fd : idle) {
        char byte;
        if (::recv(fd, &byte, 1, MSG_DONTWAIT) == 0) ++closed;  // EOF: closed by the server
    }
    EXPECT_EQ(closed, 8);
    for (int fd : idle) ::close(fd);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(shell("curl -s -o /dev/null -w '%{http_code}' " + url + "/metrics"), "200");
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// The uptime /metrics reports now, or -1.
double served_uptime(const std::string& url) {
    std::string text = shell("curl -s " + url + "/metrics || true");
    const std::string name = "\ndbsup_uptime_seconds ";
    const auto at = text.find(name);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size()));
}

// /metrics is served from the document in memory: a stats file that can no
// longer be written (a full disk, its directory removed) does not freeze it.
TEST(MetricsHttp, StaysFreshWhenTheStatsFileCannotBeWritten) {
    TempDir dir;
    const int port = free_loopback_port();
    const std::string url = "http://127.0.0.1:" + std::to_string(port);
    const auto stats_dir = dir.path() / "stats";
    std::filesystem::create_directory(stats_dir);
    SupervisorProcess sup(dir, "", {"--workers", "1", "--metrics-listen",
                                    "127.0.0.1:" + std::to_string(port), "--stats-file",
                                    (stats_dir / "s.json").string()});
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (served_uptime(url) < 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    std::filesystem::remove_all(stats_dir);  // every later write fails
    std::this_thread::sleep_for(200ms);
    const double before = served_uptime(url);
    std::this_thread::sleep_for(500ms);
    const double after = served_uptime(url);
    EXPECT_GT(before, 0);
    EXPECT_GT(after, before + 0.3) << "/metrics froze with the stats file";
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

TEST(MetricsHttp, TheFilePrometheusReadsIsParseableToo) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "1"});
    sup.wait_for([](const json& d) { return d["supervisor"]["workers_alive"] == 1; });
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    const std::string script = (dir.path() / "parse.py").string();
    std::ofstream(script) << kParse;
    std::string prom = sup.stats_path().substr(0, sup.stats_path().size() - 5) + ".prom";
    std::string samples = shell("/usr/bin/python3 " + script + " " + prom);
    EXPECT_NE(samples.find("dbsup_workers_alive 0.0"), std::string::npos) << samples;
}

// Task names come from the jobs table, where any client may write anything:
// a quote, a newline, bytes that are not UTF-8, a name cut mid-character.
// The stats keep being written, and the .prom file stays parseable with each
// label value escaped.
TEST(MetricsHttp, TaskNamesFromTheJobsTableCannotBreakTheStats) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "1"});
    sup.wait_for([](const json& d) { return d["supervisor"]["workers_alive"] == 1; });
    std::string long_name;
    for (int i = 0; i < 35; ++i) long_name += "\xC3\xA9";  // 70 bytes: cut at 63 splits one
    const std::string db = (dir.path() / "main.db").string();
    std::string insert = "INSERT INTO dbsup_jobs (id, queue, task, payload, state, priority, "
                         "run_at, attempts, max_attempts, created_at, updated_at) VALUES ";
    const char* names[] = {"'a\"b' || char(10) || 'c'", "CAST(X'78FFFE' AS TEXT)",
                           nullptr};
    for (int i = 0; i < 3; ++i) {
        std::string task = names[i] ? names[i] : "'" + long_name + "'";
        insert += std::string(i ? "," : "") + "('0190a000-0000-7000-8000-00000000000" +
                  std::to_string(i) + "', 'default', " + task + ", '{}', 'available', 0, 0, 0, "
                  "1, 0, 0)";
    }
    const std::string sql_file = (dir.path() / "insert.sql").string();
    std::ofstream(sql_file) << ".timeout 10000\n" << insert << ";\n";  // the workers claim too
    shell("sqlite3 " + db + " < " + sql_file);
    json doc = sup.wait_for([](const json& d) { return d["jobs"]["dead_total"] == 3; });
    EXPECT_EQ(doc["jobs"]["by_task"].size(), 3u) << doc["jobs"].dump();
    EXPECT_TRUE(doc["jobs"]["by_task"].contains("a\"b\nc")) << doc["jobs"].dump();
    std::string cut;
    for (int i = 0; i < 31; ++i) cut += "\xC3\xA9";  // 62 bytes: the 32nd would need 64
    EXPECT_TRUE(doc["jobs"]["by_task"].contains(cut)) << doc["jobs"].dump();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    const std::string script = (dir.path() / "labels.py").string();
    std::ofstream(script)
        << "import sys\n"
           "from prometheus_client.parser import text_string_to_metric_families\n"
           "for family in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
           "    for s in family.samples:\n"
           "        if s.name == 'dbsup_task_jobs_dead_total':\n"
           "            print(repr(s.labels['task']), s.value)\n";
    std::string prom = sup.stats_path().substr(0, sup.stats_path().size() - 5) + ".prom";
    std::string samples = shell("/usr/bin/python3 " + script + " " + prom);
    EXPECT_NE(samples.find("'a\"b\\nc' 1.0"), std::string::npos) << samples;
    EXPECT_NE(samples.find("'x\xEF\xBF\xBD\xEF\xBF\xBD' 1.0"), std::string::npos) << samples;
}

TEST(MetricsHttp, ABadAddressIsRefused) {
    TempDir dir;
    std::ofstream(dir.path() / "c.toml")
        << "[databases.main]\nurl = \"sqlite:///" << (dir.path() / "q.db").string() << "\"\n";
    CommandRun r = run_command("--config " + (dir.path() / "c.toml").string() +
                               " --workers 1 --metrics-listen 127.0.0.1:notaport");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("--metrics-listen '127.0.0.1:notaport': expected [HOST:]PORT"),
              std::string::npos) << r.output;
}

}  // namespace
}  // namespace dbsup::test
