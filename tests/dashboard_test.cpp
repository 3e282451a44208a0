// The dashboard in a real browser: Debian's chromium, headless, loads every page
// from a running supervisor whose queue has jobs in every state; the rendered
// DOM (--dump-dom) is asserted and screenshots are kept as artifacts in
// DBSUP_ARTIFACT_DIR. Actions go through the real HTTP API with and without
// the token and from another origin.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using nlohmann::json;

constexpr const char* kToken = "dashboard-test-token-0123456789";

std::string shell(const std::string& command) {
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    pclose(pipe);
    return out;
}

struct HttpResult {
    int status = 0;
    std::string body;
};

// curl: the HTTP client every operator has; -w appends the status on its own line.
HttpResult http(const std::string& method, const std::string& url,
                const std::vector<std::string>& headers = {}) {
    std::string command = "curl -s -m 10 -X " + method + " -w '\\n%{http_code}'";
    for (const std::string& h : headers) command += " -H '" + h + "'";
    const std::string out = shell(command + " '" + url + "'");
    const auto newline = out.rfind('\n');
    if (newline == std::string::npos) return {};
    return {std::atoi(out.c_str() + newline + 1), out.substr(0, newline)};
}

const char* chromium() {
    for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
        if (std::filesystem::exists(path)) return path;
    return nullptr;
}

// Chromium's profile: one per test process, removed by the fixture.
std::string profile_dir() { return "/tmp/dbsup-dashboard-chromium-" + std::to_string(::getpid()); }

std::string browser_flags() {
    return std::string(chromium()) +
           " --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
           "--hide-scrollbars --user-data-dir=" + profile_dir() + " --virtual-time-budget=5000 ";
}

// The DOM once the page's script has fetched and rendered.
std::string dump_dom(const std::string& url) {
    return shell(browser_flags() + "--dump-dom '" + url + "' 2>/dev/null");
}

std::filesystem::path screenshot(const std::string& url, const std::string& name,
                                 const std::string& size = "1280,900") {
    std::filesystem::create_directories(DBSUP_ARTIFACT_DIR);
    const auto path = std::filesystem::path(DBSUP_ARTIFACT_DIR) / (name + ".png");
    shell(browser_flags() + "--window-size=" + size + " --screenshot=" + path.string() + " '" +
          url + "' 2>/dev/null");
    return path;
}

std::string card(const std::string& dom, const std::string& label) {
    std::smatch m;
    std::regex re("data-card=\"" + label + "\">([^<]*)<");
    return std::regex_search(dom, m, re) ? m[1].str() : "";
}

std::string enqueue(const std::string& config, const std::string& args) {
    CommandRun r = run_command("--config " + config + " --log-level warn enqueue " + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::smatch id;
    std::regex_search(r.output, id, std::regex("[0-9a-f]{8}-[0-9a-f-]{27}"));
    return id.str();
}

class DashboardTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_NE(chromium(), nullptr) << "chromium is not installed (scripts/setup)"; }
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(profile_dir(), ignored);
    }

    std::string rest_toml() const {
        return "[databases.main]\nurl = \"sqlite:///" + (dir_.path() / "main.db").string() +
               "\"\n[tasks.boom]\ncommand = [\"/bin/sh\", \"-c\", \"echo '<b>bold</b> failure'; "
               "exit 1\"]\nmax_attempts = 1\n";
    }

    json job(const std::string& base, const std::string& id) {
        return json::parse(http("GET", base + "/api/jobs/" + id).body, nullptr, false);
    }

    bool wait_for_state(const std::string& base, const std::string& id, const std::string& state) {
        for (int i = 0; i < 200; ++i) {
            if (job(base, id)["state"] == state) return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

    TempDir dir_;
};

TEST_F(DashboardTest, EveryPageRendersTheQueueInABrowserAndActionsNeedTheTokenAndTheOrigin) {
    const int port = free_loopback_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    SupervisorProcess sup(dir_, "",
                          {"--workers", "2", "--dashboard", std::to_string(port), "--dashboard-actions"},
                          {std::string("DBSUP_DASHBOARD_TOKEN=") + kToken}, rest_toml());
    sup.wait_for([](const json& d) { return d["supervisor"]["workers_alive"] == 2; });
    const std::string config = (dir_.path() / "dbsup.toml").string();

    // A job in every state; the dead one's payload and error are hostile HTML.
    for (int i = 0; i < 5; ++i) enqueue(config, "noop");
    const std::string dead = enqueue(
        config, "boom --payload '{\"html\": \"<script>document.title=1</script><img src=x "
                "onerror=alert(1)>\"}'");
    const std::string running = enqueue(config, "sleep --payload '{\"ms\": 60000}'");
    const std::string waiting = enqueue(config, "noop --delay 1h");
    const std::string cancelled = enqueue(config, "noop --delay 1h");
    ASSERT_EQ(run_command("--config " + config + " jobs cancel " + cancelled).exit_code, 0);
    sup.wait_for([](const json& d) {
        return d["jobs"]["succeeded_total"] == 5 && d["jobs"]["dead_total"] == 1 &&
               d["queue"]["running"] == 1;
    });

    const std::string overview = dump_dom(base + "/");
    EXPECT_NE(overview.find("data-loaded=\"yes\""), std::string::npos) << overview.substr(0, 3000);
    EXPECT_EQ(card(overview, "state"), "running") << overview.substr(0, 3000);
    EXPECT_EQ(card(overview, "workers"), "2/2");
    EXPECT_EQ(card(overview, "dead"), "2");  // the cancelled job is stored dead too
    EXPECT_EQ(card(overview, "running"), "1");
    EXPECT_NE(overview.find("<polyline"), std::string::npos) << "no chart";
    EXPECT_NE(overview.find("SQLite 3."), std::string::npos) << "no database health";
    EXPECT_TRUE(std::regex_search(overview, std::regex("<td>default</td><td>1</td><td>1</td><td>5</td><td>2</td>")))
        << "jobs by state per queue: " << overview.substr(overview.find("Queues"), 800);

    const std::string workers = dump_dom(base + "/workers");
    const json stats = sup.stats();  // kept: a range-for over a temporary's member would dangle
    for (const auto& w : stats["workers"])
        EXPECT_NE(workers.find("<td>" + std::to_string(w["pid"].get<int>()) + "</td>"), std::string::npos);
    EXPECT_NE(workers.find(running), std::string::npos) << "the running job is not shown";

    const std::string dead_list = dump_dom(base + "/jobs?state=dead");
    EXPECT_NE(dead_list.find(dead), std::string::npos);
    EXPECT_NE(dead_list.find(cancelled), std::string::npos);
    EXPECT_EQ(dead_list.find(waiting), std::string::npos) << "the filter let an available job through";
    EXPECT_NE(dump_dom(base + "/jobs?state=available").find(waiting), std::string::npos);

    // User data is text: escaped in the DOM, no element made of it.
    const std::string dead_page = dump_dom(base + "/jobs/" + dead);
    EXPECT_NE(dead_page.find("&lt;script&gt;document.title=1&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"),
              std::string::npos)
        << dead_page.substr(0, 4000);
    EXPECT_NE(dead_page.find("&lt;b&gt;bold&lt;/b&gt; failure"), std::string::npos);
    EXPECT_EQ(dead_page.find("<img src=\"x\""), std::string::npos);
    EXPECT_EQ(dead_page.find("<b>bold</b>"), std::string::npos);
    EXPECT_NE(dead_page.find("<title>dbsupervisor</title>"), std::string::npos);

    const std::string tasks = dump_dom(base + "/tasks");
    EXPECT_TRUE(std::regex_search(tasks, std::regex("<td>boom</td><td>0</td><td>0</td><td>1</td>"))) << tasks.substr(0, 4000);
    EXPECT_TRUE(std::regex_search(tasks, std::regex("<td>noop</td><td>5</td>")));

    for (const auto& [name, url] : std::vector<std::pair<std::string, std::string>>{
             {"overview", "/"}, {"workers", "/workers"}, {"jobs", "/jobs"},
             {"job", "/jobs/" + dead}, {"tasks", "/tasks"}})
        EXPECT_GT(std::filesystem::file_size(screenshot(base + url, "dashboard-" + name)), 10000u) << name;
    EXPECT_GT(std::filesystem::file_size(screenshot(base + "/", "dashboard-overview-phone", "390,844")), 5000u);

    // The chart moves while jobs run: two dumps seconds apart differ in the counts.
    for (int i = 0; i < 30; ++i) enqueue(config, "noop");
    sup.wait_for([](const json& d) { return d["jobs"]["succeeded_total"] == 35; });
    const std::string later = dump_dom(base + "/");
    EXPECT_EQ(card(later, "succeeded"), "35");
    EXPECT_NE(card(later, "succeeded"), card(overview, "succeeded"));

    // Actions: refused (403, nothing changes) without the token or from elsewhere.
    const std::string token = std::string("X-Dbsup-Token: ") + kToken;
    EXPECT_EQ(http("POST", base + "/api/jobs/" + running + "/cancel").status, 403);
    EXPECT_EQ(http("POST", base + "/api/jobs/" + running + "/cancel", {"X-Dbsup-Token: wrong"}).status, 403);
    EXPECT_EQ(http("POST", base + "/api/jobs/" + running + "/cancel",
                   {token, "Origin: http://evil.example"}).status, 403);
    EXPECT_EQ(http("POST", base + "/api/jobs/" + running + "/cancel",
                   {token, "Sec-Fetch-Site: cross-site"}).status, 403);
    EXPECT_EQ(http("GET", base + "/api/jobs/" + running + "/cancel", {token}).status, 404);
    EXPECT_EQ(job(base, running)["state"], "running");

    // With the token, same origin: cancel a running job, retry a cancelled and a dead one.
    HttpResult cancel = http("POST", base + "/api/jobs/" + running + "/cancel",
                             {token, "Origin: " + base.substr(0), "Sec-Fetch-Site: same-origin"});
    EXPECT_EQ(cancel.status, 200) << cancel.body;
    EXPECT_TRUE(wait_for_state(base, running, "cancelled")) << job(base, running).dump();
    HttpResult retry = http("POST", base + "/api/jobs/" + cancelled + "/retry", {token});
    EXPECT_EQ(retry.status, 200) << retry.body;
    EXPECT_TRUE(wait_for_state(base, cancelled, "succeeded")) << job(base, cancelled).dump();
    HttpResult retry_dead = http("POST", base + "/api/tasks/boom/retry-dead", {token});
    EXPECT_EQ(retry_dead.status, 200) << retry_dead.body;
    EXPECT_NE(retry_dead.body.find("1 dead job(s) of boom"), std::string::npos) << retry_dead.body;
    EXPECT_EQ(http("POST", base + "/api/jobs/" + waiting + "/retry", {token}).status, 200);

    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

TEST_F(DashboardTest, ReadOnlyByDefaultAndEveryApiAnswerIsCorrectUnder200ConcurrentRequests) {
    const int port = free_loopback_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    SupervisorProcess sup(dir_, "", {"--workers", "2", "--dashboard", std::to_string(port)},
                          {std::string("DBSUP_DASHBOARD_TOKEN=") + kToken}, rest_toml());
    sup.wait_for([](const json& d) { return d["supervisor"]["workers_alive"] == 2; });
    const std::string config = (dir_.path() / "dbsup.toml").string();
    const std::string id = enqueue(config, "noop --delay 1h");
    HttpResult refused = http("POST", base + "/api/jobs/" + id + "/cancel",
                              {std::string("X-Dbsup-Token: ") + kToken});
    EXPECT_EQ(refused.status, 403);
    EXPECT_NE(refused.body.find("actions are off"), std::string::npos) << refused.body;
    EXPECT_EQ(job(base, id)["state"], "available");
    EXPECT_EQ(http("GET", base + "/api/jobs?state=bogus").status, 400);
    EXPECT_EQ(http("GET", base + "/nowhere").status, 404);

    // 200 at once, while the workers run a stream of jobs: each answer whole and right.
    // 2,000 jobs of 20 ms keep 8 threads busy for 5 s, far longer than the requests take.
    const std::string lines = (dir_.path() / "jobs.jsonl").string();
    {
        std::ofstream out(lines);
        for (int i = 0; i < 2000; ++i) out << "{\"ms\": 20}\n";
    }
    ASSERT_EQ(run_command("--config " + config + " enqueue sleep --jsonl " + lines).exit_code, 0);
    std::vector<std::future<bool>> answers;
    for (int i = 0; i < 200; ++i)
        answers.push_back(std::async(std::launch::async, [&, i] {
            const bool jobs = i % 2 == 1;
            HttpResult h = http("GET", base + (jobs ? "/api/jobs/" + id : "/api/overview"));
            const json doc = json::parse(h.body, nullptr, false);
            if (h.status != 200 || doc.is_discarded()) return false;
            return jobs ? doc["id"] == id : doc["stats"]["supervisor"]["workers_alive"] == 2;
        }));
    int ok = 0;
    for (auto& a : answers) ok += a.get() ? 1 : 0;
    EXPECT_EQ(ok, 200);
    EXPECT_GT(sup.stats()["queue"]["available"].get<int>(), 0) << "the jobs ran out before the requests";
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

}  // namespace
}  // namespace dbsup::test
