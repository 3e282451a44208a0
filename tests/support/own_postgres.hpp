// A PostgreSQL server of the test's own, for tests that stop or restart it
// (the shared one must stay up): started by scripts/pg-start, removed with
// the object; and a PgBouncer in front of one. Needs DBSUP_SOURCE_DIR defined for the test target.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <stdexcept>
#include <string>

namespace dbsup::test {

/// Runs `command` in a shell; its output. @throws std::runtime_error when it fails.
inline std::string shell(const std::string& command) {
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    if (pclose(pipe) != 0) throw std::runtime_error("failed: " + command + "\n" + out);
    return out;
}

class OwnPostgres {
public:
    OwnPostgres() {
        const std::regex line("export (\\w+)='([^']*)'");
        std::string out = shell(DBSUP_SOURCE_DIR "/scripts/pg-start");
        for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it)
            env_[(*it)[1]] = (*it)[2];
    }
    ~OwnPostgres() { std::system((DBSUP_SOURCE_DIR "/scripts/pg-stop " + data()).c_str()); }
    OwnPostgres(const OwnPostgres&) = delete;
    OwnPostgres& operator=(const OwnPostgres&) = delete;

    std::string data() const { return env_.at("DBSUP_TEST_PGDATA"); }
    std::string url() const { return env_.at("DBSUP_TEST_PG_URL"); }
    std::string password() const { return env_.at("DBSUP_TEST_PG_PASSWORD"); }
    void stop() const { pg_ctl("-m fast -w stop"); }
    void start() const { pg_ctl("-l " + data() + "/../restart.log -w -t 60 start"); }

private:
    void pg_ctl(const std::string& args) const {
        shell("runuser -u postgres -- " + env_.at("DBSUP_TEST_PGCTL") + " -D " + data() + " " +
              args + " >/dev/null 2>&1");
    }
    std::map<std::string, std::string> env_;
};

/// A PgBouncer of the test's own in transaction pooling mode in front of `pg`
/// (scripts/pgbouncer-start), removed with the object.
class OwnPgBouncer {
public:
    explicit OwnPgBouncer(const OwnPostgres& pg) {
        const std::regex line("export (\\w+)='([^']*)'");
        std::string out = shell("DBSUP_TEST_PG_URL='" + pg.url() + "' DBSUP_TEST_PG_PASSWORD='" +
                                pg.password() + "' " DBSUP_SOURCE_DIR "/scripts/pgbouncer-start");
        for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it)
            env_[(*it)[1]] = (*it)[2];
    }
    ~OwnPgBouncer() {
        std::system((DBSUP_SOURCE_DIR "/scripts/pgbouncer-stop " + env_.at("DBSUP_TEST_PGBOUNCER_DIR"))
                        .c_str());
    }
    OwnPgBouncer(const OwnPgBouncer&) = delete;
    OwnPgBouncer& operator=(const OwnPgBouncer&) = delete;

    std::string url() const { return env_.at("DBSUP_TEST_PGBOUNCER_URL"); }

private:
    std::map<std::string, std::string> env_;
};

}  // namespace dbsup::test
