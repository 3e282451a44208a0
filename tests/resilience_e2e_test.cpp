// PostgreSQL stopped and started under a running queue, on a server of the
// test's own (the shared one must stay up): the workers' circuit breakers open
// and fail fast while it is down, close after it is back, and every job still
// ends succeeded, each with exactly one row of its work.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <optional>

#include "config/config_loader.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/own_postgres.hpp"
#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using nlohmann::json;

// Directly, and through a PgBouncer (transaction pooling) that stays up while
// the server behind it goes away and comes back.
class ResilienceE2E : public ::testing::TestWithParam<bool> {};

TEST_P(ResilienceE2E, PostgresStoppedAndStartedDuringARunLosesNoJob) {
    constexpr int kJobs = 5000;
    OwnPostgres pg;
    std::optional<OwnPgBouncer> bouncer;
    if (GetParam()) bouncer.emplace(pg);
    ::setenv("DBSUP_OWN_PG_PASSWORD", pg.password().c_str(), 1);
    const std::string toml =
        "[databases.main]\nurl = \"" + (bouncer ? bouncer->url() : pg.url()) +
        "\"\npassword_env = \"DBSUP_OWN_PG_PASSWORD\"\n" +
        (bouncer ? "pooler = \"transaction\"\nlisten_url = \"" + pg.url() + "\"\n" : "") +
        "[queue]\npoll_interval_ms = 10\nlease_s = 2\nretry_base_ms = 10\nretry_max_ms = 100\n"
        "[resilience]\ncircuit_breaker = { failure_rate = 0.5, window = 4, open_ms = 300, "
        "half_open_calls = 1 }\n"
        "[tasks.record]\nsql = [\"INSERT INTO restart_events (job_id) VALUES (:job_id)\", "
        "\"SELECT pg_sleep(0.003)\"]\nmax_attempts = 1000\n";
    Config config = ConfigLoader::load_string(toml, "test");
    DatabaseManager::instance().init_worker(config.databases, "resilience-e2e");
    Session& s = DatabaseManager::instance().session("main");
    QueueSchema::migrate(s);
    s.transact([](Session& t) {
        t.execute("CREATE TABLE restart_events (job_id TEXT PRIMARY KEY)");
    });
    Queue queue = Queue::from_config(config);
    std::vector<NewJob> jobs(kJobs, NewJob{"record", "{}", "", 0, 0, 0, "", 0});
    s.transact([&](Session& t) { queue.enqueue_many(t, jobs); });
    DatabaseManager::instance().close_worker();

    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"},
                          {"DBSUP_OWN_PG_PASSWORD=" + pg.password()}, toml);
    sup.wait_for([](const json& d) { return d["jobs"]["succeeded_total"].get<int>() >= 300; });
    pg.stop();
    json down = sup.wait_for([](const json& d) {
        const json& b = d["circuit_breakers"];
        return b.contains("main") && b["main"]["state"] != "closed" &&
               b["main"]["rejected_total"].get<int>() > 0;
    });
    EXPECT_GE(down["circuit_breakers"]["main"]["opened_total"].get<int>(), 1) << down.dump();
    EXPECT_LT(down["jobs"]["succeeded_total"].get<int>(), kJobs) << "the outage came too late";
    pg.start();
    json done = sup.wait_for(
        [](const json& d) {
            return d["jobs"]["succeeded_total"].get<int>() >= kJobs &&
                   d["circuit_breakers"].contains("main") &&
                   d["circuit_breakers"]["main"]["state"] == "closed";
        },
        std::chrono::seconds(120));
    EXPECT_EQ(done["circuit_breakers"]["main"]["state"], "closed") << done.dump();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);

    DatabaseManager::instance().init_worker(config.databases, "resilience-e2e");
    Session& after = DatabaseManager::instance().session("main");
    auto counts = queue.counts(after);
    EXPECT_EQ(counts["succeeded"], kJobs);
    EXPECT_EQ(after.execute("SELECT COUNT(*) FROM restart_events").scalar<std::int64_t>(), kJobs);
    after.commit();
    DatabaseManager::instance().close_worker();
}

INSTANTIATE_TEST_SUITE_P(Servers, ResilienceE2E, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "PgBouncer" : "Direct"; });

}  // namespace
}  // namespace dbsup::test

namespace dbsup::test {
namespace {

// A socket that accepts TCP connections (the kernel completes the handshake)
// and never answers: a database host that hangs. Closed with this object.
class SilentListener {
public:
    SilentListener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(fd_, 64);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
    }
    ~SilentListener() { ::close(fd_); }
    SilentListener(const SilentListener&) = delete;
    SilentListener& operator=(const SilentListener&) = delete;
    int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

// An optional database whose host never answers: its health checks (each
// waiting connect_timeout) happen off the supervisor's event loop, so the
// stats keep coming every interval and a SIGTERM is served at once.
TEST(ResilienceE2E, ADatabaseHostThatNeverAnswersStallsNothing) {
    SilentListener silent;
    TempDir dir;
    std::string toml = "[databases.main]\nurl = \"sqlite:///" + (dir.path() / "q.db").string() +
                       "\"\n[databases.hung]\nurl = \"postgresql://app@127.0.0.1:" +
                       std::to_string(silent.port()) +
                       "/app?connect_timeout=2\"\noptional = true\n";
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, toml);
    sup.wait_for([](const json& d) { return d["supervisor"]["workers_alive"] == 1; }, 30s);
    // Over a health cycle (10 s) and then some, the longest wait between two
    // stats documents (written every 50 ms) stays far below a connect timeout.
    auto gap = 0ms, longest = 0ms;
    std::string last;
    auto last_change = std::chrono::steady_clock::now();
    const auto until = last_change + 12s;
    json doc;
    while (std::chrono::steady_clock::now() < until) {
        doc = sup.stats();
        const auto now = std::chrono::steady_clock::now();
        if (!doc.is_null() && !doc.is_discarded() && doc["generated_at"] != last) {
            last = doc["generated_at"];
            gap = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_change);
            longest = std::max(longest, gap);
            last_change = now;
        }
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_LT(longest, 1500ms) << "the event loop stalled (a health check takes 2 s here)";
    EXPECT_EQ(doc["health"]["hung"]["ok"], false) << doc["health"].dump();
    const auto stop = std::chrono::steady_clock::now();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(20s), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - stop, 8s);
}

}  // namespace
}  // namespace dbsup::test
