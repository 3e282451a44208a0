// Database-layer benchmarks (issue: foundation). Targets, checked by reading
// scripts/bench output, never by timed unit tests:
//  - warm pool checkout+return median under 1 µs uncontended;
//  - BEGIN + SELECT 1 + COMMIT through a Session within 5% of raw libpqxx.
#include <benchmark/benchmark.h>
#include <pqxx/pqxx>

#include <cstdlib>

#include "config/password_resolver.hpp"
#include "shared/db/engine.hpp"
#include "shared/db/session.hpp"
#include "tests/support/test_databases.hpp"

namespace dbsup {
namespace {

using test::TestBackend;
using test::TestDatabases;

TestDatabases& databases() {
    static TestDatabases instance;
    return instance;
}

std::shared_ptr<ConnectionPool> sqlite_pool(std::size_t size, const std::string& name) {
    PoolOptions o;
    o.name = name;
    o.size = size;
    o.max_overflow = 0;
    return databases().pool(TestBackend::sqlite, o);
}

void BM_PoolCheckoutReturn(benchmark::State& state) {
    static std::shared_ptr<ConnectionPool> pool;
    if (state.thread_index() == 0) {
        pool = sqlite_pool(8, "bench_pool");
        std::vector<ConnectionLease> warm;
        for (int i = 0; i < state.threads(); ++i) warm.push_back(pool->acquire("warm"));
    }
    for (auto _ : state) {
        ConnectionLease lease = pool->acquire("bench");
        benchmark::DoNotOptimize(lease.get());
    }
    if (state.thread_index() == 0) pool.reset();
}
BENCHMARK(BM_PoolCheckoutReturn)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();

void BM_SessionBeginCommit_SqliteMemory(benchmark::State& state) {
    DatabaseConfig db;
    db.name = "memory";
    db.url = DatabaseUrl::parse("sqlite::memory:");
    Engine engine(db, std::nullopt, "bench");
    auto pool = std::make_shared<ConnectionPool>(PoolOptions::from_config(db),
                                                 [&] { return engine.connect(); });
    Session session(pool, "bench");
    for (auto _ : state) {
        session.begin();
        session.commit();
    }
}
BENCHMARK(BM_SessionBeginCommit_SqliteMemory);

void BM_SelectOne_Session_Postgres(benchmark::State& state) {
    PoolOptions o;
    o.size = 1;
    o.max_overflow = 0;
    Session session(databases().pool(TestBackend::postgresql, o), "bench");
    for (auto _ : state) {
        session.begin();
        benchmark::DoNotOptimize(session.execute("SELECT 1"));
        session.commit();
    }
}
BENCHMARK(BM_SelectOne_Session_Postgres)->UseRealTime();

std::string raw_conninfo() {
    DatabaseConfig db = databases().config(TestBackend::postgresql);
    return "host=" + db.url.host + " port=" + std::to_string(db.url.port) +
           " dbname=" + db.url.dbname + " user=" + db.url.user +
           " password=" + *PasswordResolver::resolve(db);
}

// libpqxx's own transaction class: BEGIN, SELECT 1, COMMIT in three round trips.
void BM_SelectOne_RawLibpqxx_Postgres(benchmark::State& state) {
    pqxx::connection connection(raw_conninfo());
    for (auto _ : state) {
        pqxx::work work(connection);
        benchmark::DoNotOptimize(work.exec("SELECT 1"));
        work.commit();
    }
}
BENCHMARK(BM_SelectOne_RawLibpqxx_Postgres)->UseRealTime();

// The same statements as Session sends them (BEGIN folded into the first
// statement): the Session's own overhead is the difference from this one.
void BM_SelectOne_RawLibpqxxFolded_Postgres(benchmark::State& state) {
    pqxx::connection connection(raw_conninfo());
    pqxx::nontransaction work(connection);
    for (auto _ : state) {
        benchmark::DoNotOptimize(work.exec("BEGIN; SELECT 1"));
        work.exec("COMMIT");
    }
}
BENCHMARK(BM_SelectOne_RawLibpqxxFolded_Postgres)->UseRealTime();

}  // namespace
}  // namespace dbsup

BENCHMARK_MAIN();
