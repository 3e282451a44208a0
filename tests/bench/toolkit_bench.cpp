// Database toolkit benchmarks (issue: monitoring, resilience, prepared
// statements and bulk operations), run by scripts/bench on SQLite and a durable
// throwaway PostgreSQL. Read as ratios:
//  - statement cache: a repeated parameterised SELECT, cache size 0 vs 100;
//  - bulk insert of 100,000 rows vs one INSERT per row in one transaction
//    (target: at least 10x on PostgreSQL).
#include <benchmark/benchmark.h>

#include "config/password_resolver.hpp"
#include "shared/db/engine.hpp"
#include "shared/db/session.hpp"
#include "tests/support/test_databases.hpp"

namespace dbsup {
namespace {

using test::TestBackend;
using test::TestDatabases;

constexpr std::int64_t kBulkRows = 100'000;

TestDatabases& databases() {
    static TestDatabases instance;
    return instance;
}

TestBackend backend_of(const benchmark::State& state) {
    return state.range(0) == 0 ? TestBackend::sqlite : TestBackend::postgresql;
}

std::unique_ptr<Connection> connect(TestBackend backend, std::size_t statement_cache) {
    DatabaseConfig db = databases().config(backend);
    return Engine(db, PasswordResolver::resolve(db), "bench").connect(statement_cache);
}

// A fresh table of `rows` rows (id, name, score).
void make_table(Connection& c, const std::string& table, std::int64_t rows) {
    c.execute("DROP TABLE IF EXISTS " + table, {});
    c.execute("CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, name TEXT, score BIGINT)", {});
    for (std::int64_t id = 0; id < rows; ++id)
        c.execute("INSERT INTO " + table + " VALUES ($1, $2, $3)", {id, "name", id});
}

// range(0): backend (0 SQLite, 1 PostgreSQL); range(1): statement cache size.
void BM_RepeatedSelect(benchmark::State& state) {
    auto c = connect(backend_of(state), static_cast<std::size_t>(state.range(1)));
    make_table(*c, "bench_cache", 100);
    const std::string sql =
        "SELECT id, name, score FROM bench_cache WHERE id = $1 AND score >= $2 ORDER BY id";
    std::int64_t i = 0;
    for (auto _ : state) benchmark::DoNotOptimize(c->execute(sql, {i++ % 100, std::int64_t{0}}));
}
BENCHMARK(BM_RepeatedSelect)
    ->ArgsProduct({{0, 1}, {0, 100}})
    ->ArgNames({"pg", "cache"})
    ->UseRealTime();

std::vector<Params> bulk_rows() {
    std::vector<Params> rows;
    rows.reserve(kBulkRows);
    for (std::int64_t id = 0; id < kBulkRows; ++id) rows.push_back({id, "row name", id * 3});
    return rows;
}

// range(0): backend; range(1): 1 = bulk_insert, 0 = one INSERT per row. Each
// iteration commits 100,000 rows into an empty table.
void BM_Insert100k(benchmark::State& state) {
    DatabaseConfig db = databases().config(backend_of(state));
    auto engine = std::make_shared<Engine>(db, PasswordResolver::resolve(db), "bench");
    auto pool = std::make_shared<ConnectionPool>(PoolOptions::from_config(db),
                                                 [engine] { return engine->connect(); });
    Session s(pool, "bench");
    make_table(s.connection(), "bench_bulk", 0);
    s.commit();
    const std::vector<Params> rows = bulk_rows();
    const std::string insert = "INSERT INTO bench_bulk (id, name, score) VALUES ($1, $2, $3)";
    for (auto _ : state) {
        if (state.range(1) == 1) {
            s.bulk_insert("bench_bulk", {"id", "name", "score"}, rows);
        } else {
            for (const Params& row : rows) s.execute(insert, row);
        }
        s.commit();
        state.PauseTiming();
        s.execute("DELETE FROM bench_bulk");
        s.commit();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * kBulkRows);
}
BENCHMARK(BM_Insert100k)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->ArgNames({"pg", "bulk"})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2)
    ->UseRealTime();

}  // namespace
}  // namespace dbsup

BENCHMARK_MAIN();
