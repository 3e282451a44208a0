// Session on both backends: transact() commits or rolls back, a manual
// session's destructor rolls back, a broken connection is never pooled again.
#include <gtest/gtest.h>

#include <fstream>

#include "shared/db/postgres_connection.hpp"
#include "shared/db/session.hpp"
#include "shared/errors.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/scratch_table.hpp"

namespace dbsup::test {
namespace {

class SessionTest : public BackendTest {
protected:
    void SetUp() override {
        pool_ = make_pool();
        scratch_ = std::make_unique<ScratchTable>(pool_, "items",
                                                  "id INTEGER PRIMARY KEY, name TEXT");
        table_ = scratch_->name();
    }
    std::int64_t count() {
        Session s(pool_, "count");
        return s.execute("SELECT COUNT(*) FROM " + table_).scalar<std::int64_t>();
    }

    std::shared_ptr<ConnectionPool> pool_;
    std::unique_ptr<ScratchTable> scratch_;
    std::string table_;
};

TEST_P(SessionTest, TransactCommitsAfterANormalReturn) {
    Session session(pool_, "t");
    int returned = session.transact([&](Session& s) {
        s.execute("INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)", {1, "one"});
        return 7;
    });
    EXPECT_EQ(returned, 7);
    EXPECT_FALSE(session.in_transaction());
    EXPECT_EQ(count(), 1);
    EXPECT_EQ(pool_->stats().in_use, 0u);
}

TEST_P(SessionTest, TransactRollsBackWhenTheCallableThrows) {
    Session session(pool_, "t");
    EXPECT_THROW(session.transact([&](Session& s) {
        s.execute("INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)", {1, "one"});
        throw std::runtime_error("handler failed");
    }),
                 std::runtime_error);
    EXPECT_EQ(count(), 0);
    EXPECT_EQ(pool_->stats().in_use, 0u);
}

TEST_P(SessionTest, AFailedCommitThrowsToTheCaller) {
    Session session(pool_, "t");
    session.execute("INSERT INTO " + table_ + " (id, name) VALUES (1, 'a')");
    session.commit();
    // A deferred constraint would fail at COMMIT on PostgreSQL; a duplicate key
    // fails inside the callable on both: either way the caller sees the error.
    EXPECT_THROW(session.transact([&](Session& s) {
        s.execute("INSERT INTO " + table_ + " (id, name) VALUES (1, 'again')");
    }),
                 Error);
    EXPECT_EQ(count(), 1);
}

TEST_P(SessionTest, ManualSessionIsRolledBackByItsDestructor) {
    {
        Session session(pool_, "manual");
        session.execute("INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)", {1, "x"});
        EXPECT_TRUE(session.in_transaction());
        EXPECT_EQ(pool_->stats().in_use, 1u);
    }
    EXPECT_EQ(count(), 0);
    EXPECT_EQ(pool_->stats().in_use, 0u);
}

TEST_P(SessionTest, ExplicitCommitMakesWorkStickAndReleasesTheConnection) {
    Session session(pool_, "manual");
    session.execute("INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)", {1, "x"});
    session.commit();
    EXPECT_FALSE(session.in_transaction());
    EXPECT_EQ(pool_->stats().in_use, 0u);
    EXPECT_EQ(count(), 1);
}

TEST_P(SessionTest, ParametersAreBoundNeverSpliced) {
    const std::string hostile = "x'); DROP TABLE " + table_ + "; --";
    Session session(pool_, "t");
    session.execute("INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)", {1, hostile});
    session.execute("INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)", {2, nullptr});
    Result r = session.execute("SELECT name FROM " + table_ + " ORDER BY id");
    session.commit();
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].get<std::string>(0), hostile);
    EXPECT_TRUE(r[1].is_null(0));
    EXPECT_FALSE(r[1].get_optional<std::string>(0).has_value());
}

TEST_P(SessionTest, TypedRowsOut) {
    Session session(pool_, "t");
    Result r = session.execute("SELECT 42, 2.5, 'text', NULL");
    session.commit();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].get<std::int64_t>(0), 42);
    EXPECT_DOUBLE_EQ(r[0].get<double>(1), 2.5);
    EXPECT_EQ(r[0].get<std::string>(2), "text");
    EXPECT_THROW(r[0].get<std::int64_t>(3), Error);
    EXPECT_THROW(r[0].get<std::int64_t>(2), Error);
}

TEST_P(SessionTest, SqlErrorsAreClassified) {
    Session session(pool_, "t");
    try {
        session.execute("SELEC nonsense");
        FAIL();
    } catch (const Error& e) {
        EXPECT_TRUE(e.code() == ErrorCode::syntax || e.code() == ErrorCode::sql) << e.what();
        EXPECT_FALSE(e.is_retryable());
        EXPECT_EQ(e.database(), "main");
    }
    session.rollback();
    session.execute("INSERT INTO " + table_ + " (id, name) VALUES (1, 'a')");
    session.commit();
    try {
        session.execute("INSERT INTO " + table_ + " (id, name) VALUES (1, 'a')");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::constraint_violation) << e.what();
        EXPECT_FALSE(e.is_retryable());
    }
}

// Breaks the connection under a running transaction the way each backend
// really breaks: PostgreSQL by the server terminating the backend, SQLite by
// the database file turning into garbage underneath the connection.
void break_connection(TestBackend backend, Session& victim, Session& killer,
                      const std::string& sqlite_path) {
    if (is_postgres(backend)) {
        // The server's pid, not libpq's: a pooler gives its clients pids of its own.
        const auto pid = victim.execute("SELECT pg_backend_pid()").scalar<std::int64_t>();
        killer.execute("SELECT pg_terminate_backend($1)", {pid});
        killer.commit();
        return;
    }
    killer.connection().execute_script("PRAGMA wal_checkpoint(TRUNCATE)");
    killer.commit();
    std::fstream file(sqlite_path, std::ios::in | std::ios::out | std::ios::binary);
    std::string garbage(1 << 18, '\xff');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
}

TEST_P(SessionTest, ABrokenConnectionIsNotReturnedToThePool) {
    Session filler(pool_, "fill");
    for (int i = 0; i < 200; ++i)
        filler.execute("INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)",
                       {i, std::string(500, 'x')});
    filler.commit();

    auto victim_pool = make_pool(1, 0);
    Session victim(victim_pool, "victim");
    victim.execute("SELECT 1");  // a fresh connection: nothing of the table cached
    std::uint64_t victim_id = victim.connection().pool_state.id;
    break_connection(GetParam(), victim, filler, databases_.config(TestBackend::sqlite).url.path);
    try {
        victim.execute("SELECT SUM(LENGTH(name)) FROM " + table_);
        FAIL() << "the broken connection still worked";
    } catch (const Error& e) {
        EXPECT_TRUE(e.poisons_connection()) << e.what();
        if (is_postgres(GetParam())) {  // which database, what, what next
            EXPECT_EQ(std::string(e.what()).rfind("database 'main': the connection was lost", 0),
                      0u) << e.what();
            EXPECT_NE(std::string(e.what()).find("a new one is opened on the next use"),
                      std::string::npos) << e.what();
        }
    }
    victim.rollback();

    PoolStats stats = victim_pool->stats();
    EXPECT_EQ(stats.in_use, 0u);
    EXPECT_EQ(stats.idle, 0u);
    EXPECT_EQ(stats.closed_total, 1u);
    if (is_postgres(GetParam())) {
        victim.execute("SELECT 1");
        EXPECT_NE(victim.connection().pool_state.id, victim_id);
        victim.commit();
    }
}

// execute_all: PostgreSQL sends the statements in pipeline chunks of 256, so
// 1,000 of them cross chunk boundaries, with the deferred BEGIN in the first.
TEST_P(SessionTest, ExecuteAllRunsEveryStatementInOrder) {
    static const QueryLabel label("insert", "items", "test");
    const std::string insert = "INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)";
    std::vector<PendingStatement> statements;
    for (std::int64_t i = 1; i <= 1000; ++i)
        statements.push_back({&label, insert,
                              {i, i % 10 == 0 ? Value(nullptr) : Value("it's \\ \"" + std::to_string(i))}});
    const std::string rename = "UPDATE " + table_ + " SET name = $1 WHERE id = $2";
    statements.push_back({&label, rename, {std::string("renamed"), std::int64_t{1000}}});
    Session session(pool_, "t");
    session.transact([&](Session& s) { s.execute_all(statements); });
    EXPECT_EQ(count(), 1000);
    Session check(pool_, "check");
    EXPECT_EQ(check.execute("SELECT COUNT(*) FROM " + table_ + " WHERE name IS NULL")
                  .scalar<std::int64_t>(), 99) << "the rename ran after its row's insert";
    EXPECT_EQ(check.execute("SELECT name FROM " + table_ + " WHERE id = 7").scalar<std::string>(),
              "it's \\ \"7");
    EXPECT_EQ(check.execute("SELECT name FROM " + table_ + " WHERE id = 1000")
                  .scalar<std::string>(), "renamed");
}

TEST_P(SessionTest, ExecuteAllThrowsTheFirstErrorAndLeavesTheConnectionUsable) {
    static const QueryLabel label("insert", "items", "test");
    const std::string insert = "INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)";
    std::vector<PendingStatement> statements;
    for (std::int64_t id : {1, 2, 1, 3}) statements.push_back({&label, insert, {id, "x"}});
    Session session(pool_, "t");
    try {
        session.transact([&](Session& s) { s.execute_all(statements); });
        FAIL() << "a duplicate key was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::constraint_violation) << e.what();
    }
    EXPECT_EQ(count(), 0) << "the statements before the failure were kept";
    statements.erase(statements.begin() + 2);
    session.transact([&](Session& s) { s.execute_all(statements); });
    EXPECT_EQ(count(), 3);
    EXPECT_EQ(pool_->stats().closed_total, 0u) << "the connection was given up";
}

DBSUP_ALL_BACKENDS(SessionTest);

}  // namespace
}  // namespace dbsup::test
