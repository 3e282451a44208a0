// The per-connection prepared statement cache: LRU order and counts (unit), and
// on both real backends: hits on repeat, eviction past the bound (PostgreSQL's
// own pg_prepared_statements shows the server keeps no more), transparent
// re-preparation after ALTER TABLE, and the pool's totals.
#include <gtest/gtest.h>

#include "config/password_resolver.hpp"
#include "shared/db/engine.hpp"
#include "shared/db/session.hpp"
#include "shared/db/statement_cache.hpp"
#include "shared/errors.hpp"
#include "tests/support/backend_test.hpp"

namespace dbsup::test {
namespace {

TEST(StatementCache, EvictsTheLeastRecentlyUsedAndCounts) {
    StatementCache<int> cache(2);
    EXPECT_EQ(cache.find("a"), nullptr);
    EXPECT_FALSE(cache.insert("a", 1));
    EXPECT_FALSE(cache.insert("b", 2));
    ASSERT_NE(cache.find("a"), nullptr);  // "a" is now the most recent
    std::optional<int> evicted = cache.insert("c", 3);
    ASSERT_TRUE(evicted);
    EXPECT_EQ(*evicted, 2);
    EXPECT_EQ(cache.find("b"), nullptr);
    EXPECT_EQ(*cache.find("c"), 3);
    StatementCacheCounts counts = cache.take_counts();
    EXPECT_EQ(counts.hits, 2u);
    EXPECT_EQ(counts.misses, 2u);
    EXPECT_EQ(counts.evictions, 1u);
    EXPECT_EQ(cache.take_counts().hits, 0u);  // taking starts again from zero
    EXPECT_EQ(cache.erase("a"), 1);
    EXPECT_EQ(cache.take_all(), std::vector<int>{3});
    EXPECT_EQ(cache.size(), 0u);
}

class StatementCacheTest : public BackendTest {
protected:
    void SetUp() override {
        db_ = databases_.config(GetParam());
        engine_ = std::make_unique<Engine>(db_, PasswordResolver::resolve(db_), "dbsup-test");
        table_ = TestDatabases::unique_table("cached");
        auto c = engine_->connect();
        c->execute("CREATE TABLE " + table_ + " (id INTEGER PRIMARY KEY, name TEXT)", {});
        c->execute("INSERT INTO " + table_ + " VALUES (1, 'one'), (2, 'two'), (3, 'three')", {});
    }
    void TearDown() override { engine_->connect()->execute("DROP TABLE IF EXISTS " + table_, {}); }
    bool pg() const { return GetParam() == TestBackend::postgresql; }
    std::string select() const { return "SELECT * FROM " + table_ + " WHERE id = $1"; }
    std::int64_t prepared_on_server(Connection& c) {
        return c.execute("SELECT count(*) FROM pg_prepared_statements", {}).scalar<std::int64_t>();
    }

    DatabaseConfig db_;
    std::unique_ptr<Engine> engine_;
    std::string table_;
};

TEST_P(StatementCacheTest, ARepeatedStatementIsPreparedOnce) {
    auto c = engine_->connect(100);
    for (std::int64_t id = 1; id <= 3; ++id)
        EXPECT_EQ(c->execute(select(), {id}).rows.at(0).get<std::int64_t>(0), id);
    c->execute("SELECT name FROM " + table_ + " WHERE id = $1", {1});
    StatementCacheCounts counts = c->take_statement_counts();
    EXPECT_EQ(counts.misses, 2u);
    EXPECT_EQ(counts.hits, 2u);
    EXPECT_EQ(counts.evictions, 0u);
    if (pg()) {
        EXPECT_EQ(prepared_on_server(*c), 2);
    }
}

TEST_P(StatementCacheTest, EvictsPastItsBound) {
    auto c = engine_->connect(2);
    const std::string a = select();
    const std::string b = "SELECT name FROM " + table_ + " WHERE id = $1";
    const std::string d = "SELECT id FROM " + table_ + " WHERE name = $1";
    c->execute(a, {1});
    c->execute(b, {1});
    c->execute(d, {"one"});  // evicts a
    c->execute(a, {2});      // a miss again, evicts b
    StatementCacheCounts counts = c->take_statement_counts();
    EXPECT_EQ(counts.misses, 4u);
    EXPECT_EQ(counts.hits, 0u);
    EXPECT_EQ(counts.evictions, 2u);
    if (pg()) {
        c->begin();  // evicted statements are deallocated when a transaction begins
        c->commit();
        EXPECT_EQ(prepared_on_server(*c), 2);
    }
}

TEST_P(StatementCacheTest, SurvivesAlterTable) {
    auto c = engine_->connect(100);
    c->begin();
    EXPECT_EQ(c->execute(select(), {1}).columns.size(), 2u);
    c->commit();
    engine_->connect()->execute("ALTER TABLE " + table_ + " ADD COLUMN extra INTEGER DEFAULT 7", {});
    c->begin();  // the cached statement now returns other columns: prepared afresh
    Result r = c->execute(select(), {1});
    c->commit();
    ASSERT_EQ(r.columns.size(), 3u);
    EXPECT_EQ(r.columns[2], "extra");
    EXPECT_EQ(r.rows.at(0).get<std::int64_t>(2), 7);
    EXPECT_EQ(c->execute(select(), {2}).columns.size(), 3u);
}

// PostgreSQL aborts the transaction: restarting it silently would lose the work
// before, so the caller gets a retryable error. SQLite re-prepares in place.
TEST_P(StatementCacheTest, AStaleStatementLaterInATransaction) {
    auto c = engine_->connect(100);
    c->execute(select(), {1});
    engine_->connect()->execute("ALTER TABLE " + table_ + " ADD COLUMN extra INTEGER", {});
    c->begin();
    c->execute("SELECT 1", {});
    if (!pg()) {
        EXPECT_EQ(c->execute(select(), {1}).columns.size(), 3u);
        c->commit();
        return;
    }
    try {
        c->execute(select(), {1});
        FAIL() << "the stale statement ran";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::stale_statement) << e.what();
        EXPECT_TRUE(e.is_retryable());
    }
    c->rollback();
    c->begin();  // the retry
    EXPECT_EQ(c->execute(select(), {1}).columns.size(), 3u);
    c->commit();
}

TEST_P(StatementCacheTest, SizeZeroCachesNothing) {
    auto c = engine_->connect(0);
    c->execute(select(), {1});
    c->execute(select(), {1});
    StatementCacheCounts counts = c->take_statement_counts();
    EXPECT_EQ(counts.hits + counts.misses, 0u);
    if (pg()) {
        EXPECT_EQ(prepared_on_server(*c), 0);
    }
}

// execute_all sends unprepared statements when the cache is off, prepared ones
// (prepared before the pipeline starts) when it is on; both run and count.
TEST_P(StatementCacheTest, ExecuteAllWorksWithTheCacheOnAndOff) {
    static const QueryLabel label("insert", "cached", "test");
    const std::string insert = "INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)";
    for (std::size_t size : {std::size_t{0}, std::size_t{10}}) {
        auto c = engine_->connect(size);
        const std::int64_t first = size == 0 ? 10 : 20;
        std::vector<PendingStatement> statements;
        for (std::int64_t id = first; id < first + 5; ++id)
            statements.push_back({&label, insert, {id, "n"}});
        c->begin();
        c->execute_all(statements);
        c->commit();
        StatementCacheCounts counts = c->take_statement_counts();
        EXPECT_EQ(counts.hits + counts.misses, size == 0 ? 0u : 5u) << "cache size " << size;
        if (pg()) {
            EXPECT_EQ(prepared_on_server(*c), size == 0 ? 0 : 1) << "cache size " << size;
        }
    }
    auto c = engine_->connect();
    EXPECT_EQ(c->execute("SELECT COUNT(*) FROM " + table_, {}).scalar<std::int64_t>(), 13);
}

TEST_P(StatementCacheTest, ThePoolTotalsEveryConnection) {
    auto pool = make_pool();
    Session s(pool, "t");
    for (std::int64_t id = 1; id <= 5; ++id) {
        s.execute(select(), {id});
        s.commit();
    }
    PoolStats stats = pool->stats();
    EXPECT_EQ(stats.statement_cache_misses_total, 1u);
    EXPECT_EQ(stats.statement_cache_hits_total, 4u);
}

DBSUP_BOTH_BACKENDS(StatementCacheTest);

}  // namespace
}  // namespace dbsup::test
