// `health` and `analyze` with the real binary on both backends, and the stats
// file's health section from a running supervisor.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "shared/db/session.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using nlohmann::json;


class HealthAnalyzeTest : public BackendTest {
protected:
    void SetUp() override {
        config_ = (dir_.path() / "c.toml").string();
        std::ofstream(config_) << databases_.toml(GetParam());
        table_ = TestDatabases::unique_table("analyzed");
        Session s(make_pool(1, 0), "setup");
        s.execute("CREATE TABLE " + table_ + " (id INTEGER PRIMARY KEY, kind TEXT)");
        for (int i = 1; i <= 50; ++i)
            s.execute("INSERT INTO " + table_ + " VALUES ($1, $2)", {i, i % 2 ? "odd" : "even"});
        s.commit();
    }
    void TearDown() override {
        Session s(make_pool(1, 0), "cleanup");
        s.execute("DROP TABLE IF EXISTS " + table_);
        s.commit();
    }
    CommandRun cli(const std::string& args) { return run_command("--config " + config_ + " " + args); }
    std::int64_t rows() {
        Session s(make_pool(1, 0), "count");
        return s.execute("SELECT COUNT(*) FROM " + table_).scalar<std::int64_t>();
    }
    bool pg() const { return GetParam() == TestBackend::postgresql; }

    TempDir dir_;
    std::string config_;
    std::string table_;
};

TEST_P(HealthAnalyzeTest, HealthOfAHealthyDatabase) {
    Session busy(make_pool(1, 0), "busy");  // another connection, holding a transaction
    busy.execute("SELECT 1");
    CommandRun r = cli("health --json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    json main = json::parse(r.output)["main"];
    EXPECT_TRUE(main["ok"].get<bool>());
    EXPECT_NE(main["version"].get<std::string>().find(pg() ? "PostgreSQL" : "SQLite"),
              std::string::npos);
    EXPECT_GT(main["latency_seconds"].get<double>(), 0.0);
    if (pg()) {
        EXPECT_GE(main["connections"].get<int>(), 1) << "the test's own connection is another";
    } else {
        EXPECT_TRUE(main["connections"].is_null()) << "SQLite has no server to ask";
    }
    CommandRun text = cli("health");
    EXPECT_EQ(text.exit_code, 0);
    EXPECT_NE(text.output.find("main  ok"), std::string::npos) << text.output;
}

TEST_P(HealthAnalyzeTest, AnalyzedDeleteLeavesTheRowsInPlace) {
    CommandRun r = cli("analyze 'DELETE FROM " + table_ + " WHERE kind = $1' --param odd");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(rows(), 50) << r.output;
    if (pg()) {
        EXPECT_NE(r.output.find("rolled back"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("(rows 25,"), std::string::npos) << "actual rows of the scan\n"
                                                                 << r.output;
    } else {
        EXPECT_NE(r.output.find(table_), std::string::npos) << r.output;
    }
    CommandRun j = cli("analyze --json 'SELECT * FROM " + table_ + " WHERE id = $1' --param 7");
    ASSERT_EQ(j.exit_code, 0) << j.output;
    json plan = json::parse(j.output);
    if (pg())
        EXPECT_EQ(plan[0]["Plan"]["Actual Rows"], 1) << j.output;
    else
        EXPECT_NE(plan[0]["detail"].get<std::string>().find("PRIMARY KEY"), std::string::npos)
            << j.output;
}

TEST_P(HealthAnalyzeTest, AnalyzeErrorsAreOneClearLine) {
    CommandRun bad = cli("analyze 'SELEC 1'");
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.output.find("syntax error"), std::string::npos) << bad.output;
    EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
    CommandRun unknown = cli("analyze --db nope 'SELECT 1'");
    EXPECT_EQ(unknown.exit_code, 2);
    EXPECT_NE(unknown.output.find("no database named 'nope'"), std::string::npos);
}

// Only one statement is analyzed: a COMMIT and a DELETE behind it would run
// outside the rollback (they did on PostgreSQL).
TEST_P(HealthAnalyzeTest, AnalyzeRunsExactlyOneStatement) {
    CommandRun r = cli("analyze 'SELECT 1; COMMIT; DELETE FROM " + table_ + "'");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("expected exactly one SQL statement, got 3"), std::string::npos)
        << r.output;
    EXPECT_EQ(rows(), 50) << "the DELETE ran";
    CommandRun quoted = cli("analyze \"SELECT ';' AS a /* ; */ -- ;\"");
    EXPECT_EQ(quoted.exit_code, 0) << quoted.output;
}

TEST_P(HealthAnalyzeTest, TheStatsFileCarriesHealth) {
    SupervisorProcess sup(dir_, "", {"--workers", "1"}, {},
                          databases_.toml(GetParam()));
    json doc = sup.wait_for([](const json& d) {
        return d.contains("health") && d["health"].contains("main") &&
               d["pools"].contains("main");
    });
    const json& h = doc["health"]["main"];
    EXPECT_TRUE(h["ok"].get<bool>()) << h.dump();
    EXPECT_FALSE(h["connections"].is_null()) << "SQLite's come from the workers' pools";
    EXPECT_FALSE(h["checked_at"].get<std::string>().empty());
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

DBSUP_BOTH_BACKENDS(HealthAnalyzeTest);

// Nothing listens where the database should be (a stopped server).
TEST(HealthCli, AStoppedServerIsUnhealthyAndAnOptionalOneDegraded) {
    TempDir dir;
    const std::string port = std::to_string(free_loopback_port());
    const std::string db = "url = \"postgresql://nobody@127.0.0.1:" + port + "/none\"\n";
    std::ofstream(dir.path() / "required.toml") << "[databases.main]\n" << db;
    std::ofstream(dir.path() / "optional.toml") << "[databases.main]\n" << db << "optional = true\n";
    CommandRun required = run_command("--config " + (dir.path() / "required.toml").string() +
                                      " health");
    EXPECT_EQ(required.exit_code, 1) << required.output;
    EXPECT_NE(required.output.find("main  UNHEALTHY"), std::string::npos) << required.output;
    EXPECT_NE(required.output.find("error: "), std::string::npos);
    CommandRun optional = run_command("--config " + (dir.path() / "optional.toml").string() +
                                      " health --json");
    EXPECT_EQ(optional.exit_code, 0) << optional.output;
    json report = json::parse(optional.output)["main"];
    EXPECT_FALSE(report["ok"].get<bool>());
    EXPECT_FALSE(report["error"].get<std::string>().empty());
}

}  // namespace
}  // namespace dbsup::test
