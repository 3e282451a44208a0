// `--metrics-listen`: the real supervisor serves /metrics (checked with the
// Prometheus project's own text-format parser, python3-prometheus-client) and
// /healthz over HTTP; a bad address is refused before anything starts.
#include <gtest/gtest.h>

#include <fstream>

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
