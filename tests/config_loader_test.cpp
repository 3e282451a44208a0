// ConfigLoader: every bad configuration is reported with its file, line and key;
// the environment mapping of the original design; secrets never printed.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <vector>

#include "config/config_error.hpp"
#include "config/config_loader.hpp"
#include "config/config_printer.hpp"
#include <nlohmann/json.hpp>

#include "config/password_resolver.hpp"
#include "config/sql_text.hpp"

namespace dbsup {
namespace {

struct BadConfig {
    const char* name;
    const char* toml;
    const char* key;  // must appear in the message
    int line;         // the diagnostic must point here
    const char* expected;
};

std::ostream& operator<<(std::ostream& out, const BadConfig& c) { return out << c.name; }

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, NamesTheKeyAndTheLine) {
    const BadConfig& c = GetParam();
    try {
        ConfigLoader::load_string(c.toml, "bad.toml");
        FAIL() << "accepted: " << c.toml;
    } catch (const ConfigError& e) {
        ASSERT_EQ(e.diagnostics().size(), 1u) << e.what();
        const Diagnostic& d = e.diagnostics()[0];
        EXPECT_EQ(d.key, c.key) << e.what();
        EXPECT_EQ(d.where.rfind("bad.toml:" + std::to_string(c.line) + ":", 0), 0u) << e.what();
        EXPECT_NE(d.message.find(c.expected), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(c.key), std::string::npos);
    }
}

const BadConfig kBadConfigs[] = {
    {"MalformedToml", "[supervisor\nworkers = 2\n", "", 1, "malformed TOML"},
    {"UnknownTopLevelKey", "\n\nworkerz = 3\n", "workerz", 3, "unknown key"},
    {"UnknownSupervisorKey", "[supervisor]\nworker = 3\n", "supervisor.worker", 2, "unknown key"},
    {"WorkersWrongType", "[supervisor]\nworkers = \"eight\"\n", "supervisor.workers", 2,
     "expected an integer from 1 to 256, got a string"},
    {"WorkersOutOfRange", "[supervisor]\nworkers = 0\n", "supervisor.workers", 2,
     "expected an integer from 1 to 256, got 0"},
    {"WorkerModeUnknown", "[worker]\nmode = \"turbo\"\n", "worker.mode", 2,
     "expected one of sync, async"},
    {"MaxInFlightOutOfRange", "[worker]\nmode = \"async\"\nmax_in_flight = 257\n",
     "worker.max_in_flight", 3, "expected an integer from 1 to 256, got 257"},
    {"AsyncWithSeveralQueues",
     "[worker]\nmode = \"async\"\n[queue]\nname = \"a\"\n[queues.a]\nthreads = 1\n", "queues", 5,
     "takes jobs from [queue] name only"},
    {"BackoffNotAPair", "[supervisor]\nrestart_backoff_ms = [100]\n",
     "supervisor.restart_backoff_ms", 2, "two integers"},
    {"BackoffReversed", "[supervisor]\nrestart_backoff_ms = [500, 100]\n",
     "supervisor.restart_backoff_ms", 2, "low <= high"},
    {"ThreadsNegative", "[worker]\nthreads = -1\n", "worker.threads", 2, "from 1 to 256"},
    {"DatabaseWithoutUrl", "[databases.main]\npool_size = 3\n", "databases.main.url", 1,
     "required"},
    {"UrlUnknownScheme", "[databases.main]\nurl = \"mysql://x/y\"\n", "databases.main.url", 2,
     "unknown scheme"},
    {"UrlWithPassword", "[databases.main]\nurl = \"postgresql://u:hunter2@h/db\"\n",
     "databases.main.url", 2, "password must not be written in the URL"},
    {"UrlBadSslMode", "[databases.main]\nurl = \"postgresql://u@h/db?sslmode=maybe\"\n",
     "databases.main.url", 2, "sslmode 'maybe'"},
    {"UrlBadPort", "[databases.main]\nurl = \"postgresql://u@h:99999/db\"\n",
     "databases.main.url", 2, "port"},
    {"PasswordInFile", "[databases.main]\nurl = \"postgresql://u@h/db\"\npassword = \"x\"\n",
     "databases.main.password", 3, "never written in the config file"},
    {"BothPasswordSources",
     "[databases.main]\nurl = \"postgresql://u@h/db\"\npassword_env = \"A\"\npassword_file = "
     "\"/f\"\n",
     "databases.main.password_file", 4, "not both"},
    {"PrePingNotBool", "[databases.main]\nurl = \"sqlite:///a.db\"\npre_ping = \"yes\"\n",
     "databases.main.pre_ping", 3, "true or false"},
    {"PoolSizeZero", "[databases.main]\nurl = \"sqlite:///a.db\"\npool_size = 0\n",
     "databases.main.pool_size", 3, "from 1 to 1000"},
    {"BadJournalMode",
     "[databases.main]\nurl = \"sqlite:///a.db\"\n[databases.main.sqlite]\njournal_mode = "
     "\"fast\"\n",
     "databases.main.sqlite.journal_mode", 4, "one of wal"},
    {"UnknownPooler", "[databases.main]\nurl = \"postgresql://u@h/db\"\npooler = \"pgbouncer\"\n",
     "databases.main.pooler", 3, "one of none, session, transaction"},
    {"PoolerOnSqlite", "[databases.main]\nurl = \"sqlite:///a.db\"\npooler = \"transaction\"\n",
     "databases.main.pooler", 3, "an SQLite database has no pooler"},
    {"ListenUrlNotPostgres",
     "[databases.main]\nurl = \"postgresql://u@h/db\"\nlisten_url = \"sqlite:///a.db\"\n",
     "databases.main.listen_url", 3, "must be a postgresql:// URL"},
    {"ListenUrlWithPassword",
     "[databases.main]\nurl = \"postgresql://u@h/db\"\nlisten_url = \"postgresql://u:pw@h/db\"\n",
     "databases.main.listen_url", 3, "password must not be written in the URL"},
    {"SqliteSettingsOnPostgres",
     "[databases.main]\nurl = \"postgresql://u@h/db\"\n[databases.main.sqlite]\nbusy_timeout_ms "
     "= 10\n",
     "databases.main.sqlite", 3, "PostgreSQL database"},
    {"QueueNamesUnknownDatabase", "[queue]\ndatabase = \"other\"\n", "queue.database", 2,
     "not configured"},
    {"QueueUnknownWake", "[queue]\nwake = \"listen\"\n", "queue.wake", 2, "one of auto, poll"},
    {"QueueClaimTimeZero", "[queue]\nclaim_time_ms = 0\n", "queue.claim_time_ms", 2, "from 1"},
    {"TaskWithoutSql", "[tasks.send]\nmax_attempts = 3\n", "tasks.send.sql", 1, "required"},
    {"TaskSqlAndCommand", "[tasks.send]\nsql = \"SELECT 1\"\ncommand = [\"/bin/true\"]\n",
     "tasks.send.sql", 2, "give sql or command, not both"},
    {"TaskEmptyCommand", "[tasks.send]\ncommand = [\"\", \"x\"]\n", "tasks.send.command", 2,
     "give the program and its arguments"},
    {"TaskSqlWrongType", "[tasks.send]\nsql = 42\n", "tasks.send.sql", 2, "array of strings"},
    {"TaskUnknownDatabase", "[tasks.send]\nsql = \"SELECT 1\"\ndatabase = \"x\"\n",
     "tasks.send.database", 3, "not configured"},
    {"FailureRateTooHigh", "[resilience]\ncircuit_breaker = { failure_rate = 1.5 }\n",
     "resilience.circuit_breaker.failure_rate", 2, "from 0.01 to 1"},
    {"RetryBaseAboveMax", "[resilience.retry]\nbase_ms = 500\nmax_ms = 100\n",
     "resilience.retry.max_ms", 3, "at least base_ms"},
    {"SectionNotATable", "monitoring = 5\n", "monitoring", 1, "expected a table"},
    // SQLite ran only the first of several statements in one string, silently.
    {"TaskSqlWithTwoStatements", "[tasks.send]\nsql = \"DELETE FROM a; DELETE FROM b\"\n",
     "tasks.send.sql", 2, "exactly one statement, this one has 2"},
    {"FailureRateNan", "[resilience]\ncircuit_breaker = { failure_rate = nan }\n",
     "resilience.circuit_breaker.failure_rate", 2, "from 0.01 to 1"},
    {"QueuesThreadsDisagree", "[worker]\nthreads = 4\n[queues.default]\nthreads = 2\n",
     "queues", 3, "disagrees with the sum of [queues.*] threads (2)"},
    {"QueuesWithoutTheDefaultQueue", "[queues.mail]\nthreads = 2\n", "queues", 1,
     "[queue] name = \"default\" (where enqueue puts jobs) is not one of the [queues.*]"},
    {"QueuesZeroThreads", "[queues.default]\nthreads = 0\n", "queues.default.threads", 2,
     "from 1 to 256"},
    {"ScheduleBadCron", "[schedules.nightly]\ntask = \"report\"\n\ncron = \"0 25 * * *\"\n",
     "schedules.nightly.cron", 4, "hour field '25': '25' is outside 0-23"},
    {"ScheduleCronNeverFires", "[schedules.nightly]\ntask = \"report\"\ncron = \"0 0 31 4 *\"\n",
     "schedules.nightly.cron", 3, "never fires"},
    {"ScheduleCronAndEvery",
     "[schedules.nightly]\ntask = \"report\"\ncron = \"@daily\"\nevery = \"1h\"\n",
     "schedules.nightly.cron", 3, "exactly one"},
    {"ScheduleEveryNotADuration", "[schedules.tick]\ntask = \"t\"\nevery = \"often\"\n",
     "schedules.tick.every", 3, "not a duration"},
    {"ScheduleEveryBelowASecond", "[schedules.tick]\ntask = \"t\"\nevery = \"500ms\"\n",
     "schedules.tick.every", 3, "whole seconds, at least 1s"},
    {"ScheduleUnknownZone",
     "[schedules.tick]\ntask = \"t\"\nevery = \"1m\"\ntimezone = \"Mars/Olympus\"\n",
     "schedules.tick.timezone", 4, "not a time zone"},
    {"ScheduleWithoutTask", "[schedules.tick]\nevery = \"1m\"\n", "schedules.tick.task", 1,
     "required"},
    {"ScheduleBadCatchUp", "[schedules.tick]\ntask = \"t\"\nevery = \"1m\"\ncatch_up = \"some\"\n",
     "schedules.tick.catch_up", 4, "one of none, last, all"},
};

INSTANTIATE_TEST_SUITE_P(Config, BadConfigTest, ::testing::ValuesIn(kBadConfigs),
                         [](const auto& param_info) {
                             std::string name = param_info.param.name;
                             for (char& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return name;
                         });

std::string read_example(const char* name) {
    std::ifstream in(std::string(DBSUP_SOURCE_DIR) + "/config/examples/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// One random slip, as a person (or a bad template) makes them: a value of
// another shape, a section given as a scalar, a line lost or doubled, a
// section renamed.
std::vector<std::string> mutate(std::vector<std::string> lines, std::mt19937& random) {
    static const char* kValues[] = {"1", "\"x\"", "[]", "{}", "{ a = 1 }", "nan", "-inf",
                                    "-1", "9223372036854775807", "true", "[1, \"a\"]",
                                    "\"\"", "1.5", "1979-05-27", "[[1]]", "{ url = 2 }"};
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random); };
    const std::size_t kind = pick(5);
    std::vector<std::size_t> headers;  // the slips of kinds 1 and 4 need a [section] line
    for (std::size_t h = 0; h < lines.size(); ++h)
        if (!lines[h].empty() && lines[h][0] == '[') headers.push_back(h);
    std::size_t i = (kind == 1 || kind == 4) && !headers.empty() ? headers[pick(headers.size())]
                                                                 : pick(lines.size());
    std::string& line = lines[i];
    const std::string value = kValues[pick(std::size(kValues))];
    switch (kind) {
        case 0:
            if (auto eq = line.find('='); eq != std::string::npos) line = line.substr(0, eq + 1) + " " + value;
            break;
        case 1:  // a section given as a top-level scalar: `queue = 1`
            if (!line.empty() && line[0] == '[') {
                std::string key = line.substr(1, line.find(']') - 1);
                lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i));
                lines.insert(lines.begin(), key + " = " + value);
            }
            break;
        case 2: lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i)); break;
        case 3: lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(i), lines[pick(lines.size())]); break;
        case 4:
            if (auto dot = line.rfind('.'); !line.empty() && line[0] == '[' && dot != std::string::npos)
                line = line.substr(0, dot) + ".other]";
            break;
    }
    return lines;
}

// Thousands of mutated copies of the examples: none crashes the loader, and
// each one refused names a place in its file for every problem.
TEST(ConfigLoader, SurvivesThousandsOfMutatedExamples) {
    std::mt19937 random(20261201);
    std::vector<std::vector<std::string>> examples;
    for (const char* name : {"sqlite.toml", "postgres.toml"}) {
        std::vector<std::string> lines;
        std::stringstream text(read_example(name));
        for (std::string line; std::getline(text, line);) lines.push_back(line);
        ASSERT_GT(lines.size(), 10u) << name;
        examples.push_back(std::move(lines));
    }
    int refused = 0;
    for (int n = 0; n < 20000; ++n) {
        std::vector<std::string> lines = examples[static_cast<std::size_t>(n) % 2];
        for (int slips = 1 + n % 4; slips > 0; --slips) lines = mutate(std::move(lines), random);
        std::string toml;
        for (const std::string& line : lines) toml += line + "\n";
        try {
            ConfigLoader::load_string(toml, "m.toml");
        } catch (const ConfigError& e) {
            ++refused;
            ASSERT_FALSE(e.diagnostics().empty()) << toml;
            for (const Diagnostic& d : e.diagnostics())
                ASSERT_EQ(d.where.rfind("m.toml:", 0), 0u) << e.what() << "\n" << toml;
        }
    }
    EXPECT_GT(refused, 10000) << "the mutations were too mild to test anything";
}

// The queue's section a scalar while its database is missing: the reference
// check walked into the scalar (SIGSEGV before). Both problems are named.
TEST(ConfigLoader, AScalarSectionThatIsAlsoReferencedIsReportedNotCrashed) {
    try {
        ConfigLoader::load_string("queue = 1\n[databases.other]\nurl = \"sqlite:///a.db\"\n",
                                  "bad.toml");
        FAIL() << "accepted";
    } catch (const ConfigError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("bad.toml:1:9: queue: expected a table, got an integer"),
                  std::string::npos) << what;
        EXPECT_NE(what.find("queue.database: names database \"main\""), std::string::npos)
            << what;
    }
}

TEST(SqlText, CountsStatementsOutsideQuotesCommentsAndDollarQuotes) {
    EXPECT_EQ(count_sql_statements(""), 0u);
    EXPECT_EQ(count_sql_statements(" ; -- only a comment\n"), 0u);
    EXPECT_EQ(count_sql_statements("SELECT 1;"), 1u);
    EXPECT_EQ(count_sql_statements("SELECT 1; COMMIT; DELETE FROM t"), 3u);
    EXPECT_EQ(count_sql_statements("SELECT ';' AS \"a;b\" /* ; /* ; */ ; */ -- ;\n"), 1u);
    EXPECT_EQ(count_sql_statements("SELECT 'it''s;' , E'\\';' ;"), 1u);
    EXPECT_EQ(count_sql_statements("DO $f$ BEGIN PERFORM 1; END $f$; SELECT $1"), 2u);
    EXPECT_EQ(count_sql_statements("SELECT $1; SELECT $2"), 2u);
}

TEST(ConfigLoader, ReportsEveryErrorNotJustTheFirst) {
    try {
        ConfigLoader::load_string("[supervisor]\nworkers = 0\nbogus = 1\n[worker]\nthreads = 0\n",
                                  "many.toml");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.diagnostics().size(), 3u) << e.what();
    }
}

TEST(ConfigLoader, ReadsBothExamples) {
    Config sqlite = ConfigLoader::load_file(DBSUP_SOURCE_DIR "/config/examples/sqlite.toml");
    EXPECT_EQ(sqlite.databases.at("main").url.backend, Backend::sqlite);
    EXPECT_EQ(sqlite.databases.at("main").url.path, "dbsupervisor.db");
    Config pg = ConfigLoader::load_file(DBSUP_SOURCE_DIR "/config/examples/postgres.toml");
    const DatabaseConfig& main = pg.databases.at("main");
    EXPECT_EQ(main.url.backend, Backend::postgresql);
    EXPECT_EQ(main.url.host, "db.internal");
    EXPECT_EQ(main.url.port, 5432);
    EXPECT_EQ(main.url.params.at("sslmode"), "verify-full");
    EXPECT_EQ(main.password_env, "DBSUP_PG_PASSWORD");
    EXPECT_TRUE(pg.databases.at("reports").optional);
    EXPECT_EQ(pg.tasks.at("record_event").max_attempts, 5);
    EXPECT_EQ(pg.supervisor.restart_backoff_max_ms, 10000);
}

TEST(ConfigLoader, MissingFileIsOneClearError) {
    try {
        ConfigLoader::load_file("/nonexistent/dbsup.toml");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/dbsup.toml"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos);
    }
}

TEST(ConfigPrinter, WhatItPrintsReadsBackToTheSameConfiguration) {
    Config original = ConfigLoader::load_file(DBSUP_SOURCE_DIR "/config/examples/postgres.toml");
    std::string text = ConfigPrinter::to_toml(original);
    Config again = ConfigLoader::load_string(text, "printed");
    auto body = [](const std::string& t) { return t.substr(t.find('\n')); };
    EXPECT_EQ(body(ConfigPrinter::to_toml(again)), body(text));  // all but "resolved from"
    EXPECT_EQ(again.databases.at("reports").password_file,
              original.databases.at("reports").password_file);
}

// Workers read the printed config: a pooled database must stay pooled there.
TEST(ConfigPrinter, KeepsThePoolerAndTheListenUrl) {
    Config c = ConfigLoader::load_string(
        "[databases.main]\nurl = \"postgresql://app@bouncer:6432/app\"\npooler = "
        "\"transaction\"\nlisten_url = \"postgresql://app@db:5432/app?sslmode=require\"\n",
        "test");
    Config again = ConfigLoader::load_string(ConfigPrinter::to_toml(c), "printed");
    const DatabaseConfig& db = again.databases.at("main");
    EXPECT_TRUE(db.transaction_pooled());
    ASSERT_TRUE(db.listen_url.has_value());
    EXPECT_EQ(db.listen_url->host, "db");
    EXPECT_EQ(db.listen_url->params.at("sslmode"), "require");
    EXPECT_EQ(ConfigLoader::load_string("[databases.main]\nurl = \"postgresql://a@h/d\"\n", "t")
                  .databases.at("main")
                  .pooler,
              "none");
}

TEST(ConfigLoader, QueuesShareTheThreads) {
    Config c = ConfigLoader::load_string(
        "[queue]\nname = \"mail\"\n[queues.mail]\nthreads = 1\nclaim_batch = 5\n"
        "[queues.reports]\nthreads = 3\n",
        "test");
    EXPECT_EQ(c.worker.threads, 4);
    Config again = ConfigLoader::load_string(ConfigPrinter::to_toml(c), "printed");
    EXPECT_EQ(again.worker.threads, 4);
    EXPECT_EQ(again.queues.at("mail").claim_batch, 5);
    EXPECT_EQ(again.queues.at("reports").threads, 3);
}

TEST(ConfigPrinter, KeepsSchedulesWithTheirPayload) {
    Config c = ConfigLoader::load_string(
        "[schedules.nightly]\ncron = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n"
        "task = \"report\"\npayload = { kind = \"daily\", n = 2, tags = [\"a\", \"b\"], "
        "opts = { x = true } }\nqueue = \"reports\"\ncatch_up = \"all\"\n"
        "[schedules.tick]\nevery = \"90s\"\ntask = \"ping\"\n",
        "test");
    Config again = ConfigLoader::load_string(ConfigPrinter::to_toml(c), "printed");
    const ScheduleConfig& n = again.schedules.at("nightly");
    EXPECT_EQ(n.cron, "0 3 * * *");
    EXPECT_EQ(n.timezone, "Europe/Berlin");
    EXPECT_EQ(n.queue, "reports");
    EXPECT_EQ(n.catch_up, "all");
    EXPECT_EQ(nlohmann::json::parse(n.payload),
              nlohmann::json::parse(R"({"kind":"daily","n":2,"tags":["a","b"],"opts":{"x":true}})"));
    EXPECT_EQ(again.schedules.at("tick").every_ms, 90'000);
    EXPECT_EQ(again.schedules.at("tick").catch_up, "last");
    EXPECT_EQ(again.schedules.at("tick").payload, "{}");
}

TEST(ConfigLoader, FileWithoutDatabasesUsesTheEmbeddedDefault) {
    Config c = ConfigLoader::load_string("[worker]\nthreads = 2\n", "t.toml");
    EXPECT_EQ(c.databases.at("main").url.path, "dbsupervisor.db");
    EXPECT_EQ(c.worker.threads, 2);
}

EnvLookup env_of(std::map<std::string, std::string> values) {
    return [values](const char* name) -> std::optional<std::string> {
        auto it = values.find(name);
        if (it == values.end()) return std::nullopt;
        return it->second;
    };
}

TEST(EnvironmentConfig, DefaultsToSqliteFileInTheCurrentDirectory) {
    Config c = ConfigLoader::from_environment(env_of({}));
    EXPECT_EQ(c.databases.at("main").url.backend, Backend::sqlite);
    EXPECT_EQ(c.databases.at("main").url.path, "dbsupervisor.db");
}

TEST(EnvironmentConfig, MapsEveryPostgresVariable) {
    Config c = ConfigLoader::from_environment(env_of({{"DATABASE_TYPE", "postgresql"},
                                                      {"DATABASE_NAME", "orders"},
                                                      {"DATABASE_USER", "app"},
                                                      {"DATABASE_PASSWORD", "s3cret-pw"},
                                                      {"DATABASE_HOST", "db.example"},
                                                      {"DATABASE_PORT", "6543"},
                                                      {"DATABASE_SSL", "true"}}));
    const DatabaseConfig& db = c.databases.at("main");
    EXPECT_EQ(db.url.backend, Backend::postgresql);
    EXPECT_EQ(db.url.dbname, "orders");
    EXPECT_EQ(db.url.user, "app");
    EXPECT_EQ(db.url.host, "db.example");
    EXPECT_EQ(db.url.port, 6543);
    EXPECT_EQ(db.url.params.at("sslmode"), "require");
    EXPECT_EQ(PasswordResolver::resolve(db), "s3cret-pw");
    EXPECT_EQ(db.url.redacted(), "postgresql://app:***@db.example:6543/orders?sslmode=require");
    EXPECT_EQ(ConfigPrinter::to_toml(c).find("s3cret-pw"), std::string::npos);
}

TEST(EnvironmentConfig, SqliteNameIsTheFile) {
    Config c = ConfigLoader::from_environment(
        env_of({{"DATABASE_TYPE", "sqlite"}, {"DATABASE_NAME", "/tmp/x.db"}}));
    EXPECT_EQ(c.databases.at("main").url.path, "/tmp/x.db");
}

TEST(EnvironmentConfig, BadValuesAreAllReported) {
    try {
        ConfigLoader::from_environment(env_of({{"DATABASE_TYPE", "postgresql"},
                                               {"DATABASE_PORT", "http"},
                                               {"DATABASE_SSL", "perhaps"},
                                               {"DATABASE_PASSWORD", "s3cret-pw"}}));
        FAIL();
    } catch (const ConfigError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("environment: DATABASE_PORT"), std::string::npos) << what;
        EXPECT_NE(what.find("environment: DATABASE_SSL"), std::string::npos) << what;
        EXPECT_EQ(what.find("s3cret-pw"), std::string::npos);
    }
    EXPECT_THROW(ConfigLoader::from_environment(env_of({{"DATABASE_TYPE", "oracle"}})),
                 ConfigError);
}

TEST(PasswordResolver, MissingVariableIsNamedButNeverAValue) {
    DatabaseConfig db;
    db.name = "main";
    db.url = DatabaseUrl::parse("postgresql://u@h/db");
    db.password_env = "DBSUP_TEST_SURELY_UNSET_VARIABLE";
    auto problem = PasswordResolver::problem(db);
    ASSERT_TRUE(problem.has_value());
    EXPECT_NE(problem->find("DBSUP_TEST_SURELY_UNSET_VARIABLE"), std::string::npos);
    EXPECT_THROW(PasswordResolver::resolve(db), ConfigError);
}

TEST(PasswordResolver, ReadsTheFirstLineOfPasswordFile) {
    std::string path = ::testing::TempDir() + "/dbsup-pw";
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("from-file-pw\n", f);
    std::fclose(f);
    DatabaseConfig db;
    db.password_file = path;
    EXPECT_EQ(PasswordResolver::resolve(db), "from-file-pw");
    std::remove(path.c_str());
}

}  // namespace
}  // namespace dbsup
