#include "tests/support/test_databases.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "config/password_resolver.hpp"
#include "shared/db/engine.hpp"
#include "shared/db/session.hpp"

namespace dbsup::test {

std::string backend_name(TestBackend backend) {
    if (backend == TestBackend::pgbouncer) return "PgBouncer";
    return backend == TestBackend::sqlite ? "SQLite" : "PostgreSQL";
}

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "dbsup-test.XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

DatabaseConfig TestDatabases::config(TestBackend backend, const std::string& name) const {
    DatabaseConfig db;
    db.name = name;
    if (backend == TestBackend::sqlite) {
        db.url.backend = Backend::sqlite;
        db.url.path = (dir_.path() / (name + ".db")).string();
        return db;
    }
    db.url = DatabaseUrl::parse(required_env("DBSUP_TEST_PG_URL"));
    db.password_env = "DBSUP_TEST_PG_PASSWORD";
    if (backend == TestBackend::pgbouncer) {
        db.listen_url = db.url;
        db.url = DatabaseUrl::parse(required_env("DBSUP_TEST_PGBOUNCER_URL"));
        db.pooler = "transaction";
    }
    return db;
}

std::string TestDatabases::required_env(const char* name) {
    const char* value = std::getenv(name);
    if (!value || !*value)
        throw std::runtime_error(std::string(name) +
                                 " is not set: run the tests through scripts/test, which starts "
                                 "a throwaway PostgreSQL and a PgBouncer in front of it");
    return value;
}

std::shared_ptr<ConnectionPool> TestDatabases::pool(TestBackend backend,
                                                    PoolOptions options) const {
    DatabaseConfig db = config(backend, options.name);
    options.backend = db.url.backend;
    auto engine = std::make_shared<Engine>(db, PasswordResolver::resolve(db), "dbsup-test");
    return std::make_shared<ConnectionPool>(std::move(options),
                                            [engine] { return engine->connect(); });
}

std::string TestDatabases::toml(TestBackend backend, const std::string& name) const {
    DatabaseConfig db = config(backend, name);
    std::string out = "[databases." + name + "]\n";
    if (backend == TestBackend::sqlite) return out + "url = \"sqlite:///" + db.url.path + "\"\n";
    out += "url = \"" + db.url.redacted() + "\"\npassword_env = \"DBSUP_TEST_PG_PASSWORD\"\n";
    if (db.listen_url)
        out += "pooler = \"" + db.pooler + "\"\nlisten_url = \"" + db.listen_url->redacted() + "\"\n";
    return out;
}

void TestDatabases::drop_queue_tables(TestBackend backend) const {
    Session session(pool(backend, PoolOptions{}), "drop_queue_tables");
    session.transact([](Session& s) {
        s.execute("DROP TABLE IF EXISTS dbsup_jobs");
        s.execute("DROP TABLE IF EXISTS dbsup_schema");
        s.execute("DROP TABLE IF EXISTS dbsup_queues");
        s.execute("DROP TABLE IF EXISTS dbsup_schedules");
    });
}

std::string TestDatabases::unique_table(const std::string& stem) {
    static std::atomic<int> counter{0};
    return stem + "_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
}

}  // namespace dbsup::test
