// The real dbsupervisor binary: check-config on the examples and on bad files,
// exit codes, and no password in anything it prints.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <regex>

#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

CommandRun run(const std::string& args, const std::string& env = "") {
    return run_command(args, env);
}

std::string write_file(const TempDir& dir, const std::string& name, const std::string& text) {
    std::string path = (dir.path() / name).string();
    std::ofstream(path) << text;
    return path;
}

TEST(CheckConfigCli, AcceptsBothExamples) {
    CommandRun sqlite = run("check-config --config " DBSUP_SOURCE_DIR "/config/examples/sqlite.toml");
    EXPECT_EQ(sqlite.exit_code, 0) << sqlite.output;
    EXPECT_NE(sqlite.output.find("url = 'sqlite:///dbsupervisor.db'"), std::string::npos)
        << sqlite.output;
    CommandRun pg = run("check-config --config " DBSUP_SOURCE_DIR "/config/examples/postgres.toml",
                 "DBSUP_PG_PASSWORD=hunter2-secret");
    EXPECT_EQ(pg.exit_code, 0) << pg.output;
    EXPECT_NE(pg.output.find("postgresql://app@db.internal:5432/app?sslmode=verify-full"),
              std::string::npos)
        << pg.output;
    EXPECT_EQ(pg.output.find("hunter2-secret"), std::string::npos);
}

TEST(CheckConfigCli, AnUnsetPasswordVariableIsOnlyAWarning) {
    CommandRun pg = run("check-config --config " DBSUP_SOURCE_DIR "/config/examples/postgres.toml",
                 "env -u DBSUP_PG_PASSWORD");
    EXPECT_EQ(pg.exit_code, 0) << pg.output;
    EXPECT_NE(pg.output.find("warning: databases.main.password_env: environment variable "
                             "DBSUP_PG_PASSWORD is not set"),
              std::string::npos)
        << pg.output;
}

TEST(CheckConfigCli, ReportsEveryErrorWithFileLineAndKeyAndExits2) {
    TempDir dir;
    std::string path = write_file(dir, "bad.toml",
                                  "[supervisor]\nworkers = -3\n\n[databases.main]\n"
                                  "url = \"postgresql://u:topsecret@h/db\"\ncolour = 1\n");
    CommandRun r = run("check-config --config " + path);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(path + ":2:11: supervisor.workers:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(path + ":5:7: databases.main.url:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(path + ":6:1: databases.main.colour: unknown key"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("topsecret"), std::string::npos);
}

TEST(CheckConfigCli, MalformedTomlIsOneClearLine) {
    TempDir dir;
    std::string path = write_file(dir, "broken.toml", "[supervisor\n");
    CommandRun r = run("check-config --config " + path);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find(path + ":1:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("malformed TOML"), std::string::npos) << r.output;
}

TEST(CheckConfigCli, UsesTheEnvironmentWithoutAConfigAndRedactsItsPassword) {
    CommandRun r = run("check-config",
                "DATABASE_TYPE=postgresql DATABASE_USER=app DATABASE_PASSWORD=env-secret-42 "
                "DATABASE_HOST=db DATABASE_NAME=orders");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("url = 'postgresql://app@db:5432/orders'"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("password_env = 'DATABASE_PASSWORD'"), std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("env-secret-42"), std::string::npos);
}

TEST(CheckConfigCli, BadArgumentsExit2AndHelpExits0) {
    EXPECT_EQ(run("--workers 0").exit_code, 2);
    EXPECT_EQ(run("--no-such-flag").exit_code, 2);
    CommandRun help = run("--help");
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.output.find("check-config"), std::string::npos);
    EXPECT_NE(help.output.find("TERM/INT graceful"), std::string::npos);
}

TEST(CheckConfigCli, AMissingConfigFileIsNamed) {
    CommandRun r = run("check-config --config /nonexistent/x.toml");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("/nonexistent/x.toml: cannot read the config file"),
              std::string::npos)
        << r.output;
}

// A directory opens and reads as nothing; it must not run on the defaults.
TEST(CheckConfigCli, ADirectoryAsTheConfigIsRefused) {
    TempDir dir;
    for (const char* command : {"check-config", "run"}) {
        CommandRun r = run(std::string(command) + " --config " + dir.path().string());
        EXPECT_EQ(r.exit_code, 2) << command << ": " << r.output;
        EXPECT_NE(r.output.find(dir.path().string() +
                                ": cannot read the config file: it is a directory"),
                  std::string::npos)
            << r.output;
    }
}

TEST(RunCli, VerifiesTheDatabasesFirst) {
    TempDir dir;
    // run keeps going until signalled, so a TERM after a moment ends it cleanly.
    CommandRun ok = run("run --workers 1 --stats-file " + (dir.path() / "stats.json").string(),
                        "DATABASE_NAME=" + (dir.path() / "x.db").string() +
                            " timeout --preserve-status -s TERM 3");
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_NE(ok.output.find("database 'main' ok: sqlite:///"), std::string::npos) << ok.output;
    CommandRun bad = run("--workers 2", "DATABASE_NAME=/nonexistent-dir/x.db");
    EXPECT_EQ(bad.exit_code, 1) << bad.output;
    EXPECT_NE(bad.output.find("database 'main' unusable"), std::string::npos) << bad.output;
}

TEST(RunCli, VersionNamesTheBackendLibrariesItRunsWith) {
    for (const char* flag : {"--version", "-V"}) {
        CommandRun r = run(flag);
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_TRUE(std::regex_search(r.output, std::regex("^dbsupervisor [0-9]+\\.[0-9]+\\.[0-9]+\n")))
            << r.output;
        EXPECT_TRUE(std::regex_search(r.output, std::regex("libpq [0-9]+\\.[0-9]+, libpqxx [0-9.]+, "
                                                           "SQLite 3\\.[0-9.]+, Boost 1\\.")))
            << r.output;
    }
}

TEST(RunCli, DashboardFlagsAreCheckedBeforeAnythingStarts) {
    TempDir dir;
    const std::string env = "env -u DBSUP_DASHBOARD_TOKEN DATABASE_NAME=" + (dir.path() / "x.db").string();
    CommandRun no_token = run("--dashboard 0 --dashboard-actions", env);
    EXPECT_EQ(no_token.exit_code, 2) << no_token.output;
    EXPECT_NE(no_token.output.find("--dashboard-actions needs a token of at least 16 characters"),
              std::string::npos)
        << no_token.output;
    const std::string token_file = write_file(dir, "token", "short\n");
    CommandRun short_token = run("--dashboard 0 --dashboard-actions --dashboard-token-file " + token_file, env);
    EXPECT_EQ(short_token.exit_code, 2) << short_token.output;
    EXPECT_NE(short_token.output.find(token_file + ": the token must have at least 16 characters"),
              std::string::npos)
        << short_token.output;
    EXPECT_EQ(short_token.output.find("short\n"), std::string::npos) << "the token was printed";
    CommandRun bad_address = run("--dashboard nowhere:80", env);
    EXPECT_EQ(bad_address.exit_code, 2) << bad_address.output;
    EXPECT_NE(bad_address.output.find("--dashboard 'nowhere:80': 'nowhere' is not an IP address"),
              std::string::npos)
        << bad_address.output;
}

// A rolling deploy: the new binary must not upgrade the schema under old ones.
TEST(RunCli, NoMigrateRefusesAnOutdatedSchemaAndRunsOnACurrentOne) {
    TempDir dir;
    const std::string db = (dir.path() / "x.db").string();
    const std::string env = "DATABASE_NAME=" + db;
    const std::string args = "run --no-migrate --workers 1 --stats-file " +
                             (dir.path() / "stats.json").string();
    CommandRun refused = run(args, env);
    EXPECT_EQ(refused.exit_code, 2) << refused.output;
    EXPECT_NE(refused.output.find("the queue schema is at version 0, this binary needs"),
              std::string::npos)
        << refused.output;
    EXPECT_NE(refused.output.find("run `dbsupervisor init-db`"), std::string::npos);
    FILE* tables = popen(("sqlite3 " + db + " \"SELECT count(*) FROM sqlite_master\"").c_str(), "r");
    char count[16] = {};
    ASSERT_NE(std::fgets(count, sizeof count, tables), nullptr);
    pclose(tables);
    EXPECT_STREQ(count, "0\n") << "--no-migrate created tables";

    ASSERT_EQ(run("init-db", env).exit_code, 0);
    CommandRun ok = run(args, env + " timeout --preserve-status -s TERM 3");
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_NE(ok.output.find("schema version"), std::string::npos) << ok.output;
}

}  // namespace
}  // namespace dbsup::test
