// The retry policy against real transient errors (a PostgreSQL serialization
// failure, SQLite's busy lock) and real permanent ones (a unique violation),
// and the circuit breaker's states, with a pool whose database is unreachable.
#include <gtest/gtest.h>

#include <thread>

#include "shared/db/session.hpp"
#include "shared/resilience/circuit_breaker.hpp"
#include "shared/resilience/error_backoff.hpp"
#include "shared/resilience/retry_policy.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/scratch_table.hpp"

namespace dbsup::test {
namespace {

using namespace std::chrono_literals;

RetryConfig retry_config(std::int64_t attempts) {
    RetryConfig c;
    c.attempts = attempts;
    c.base_ms = 1;
    c.max_ms = 5;
    return c;
}

class RetryTest : public BackendTest {
protected:
    void SetUp() override {
        pool_ = make_pool(3, 0);
        scratch_ = std::make_unique<ScratchTable>(pool_, "retried",
                                                  "id INTEGER PRIMARY KEY, v INTEGER NOT NULL");
        table_ = scratch_->name();
        Session s(pool_, "setup");
        s.execute("INSERT INTO " + table_ + " VALUES (1, 0)");
        s.commit();
    }
    std::shared_ptr<ConnectionPool> pool_;
    std::unique_ptr<ScratchTable> scratch_;
    std::string table_;
};

// A transaction that read a row another one then changed cannot commit its
// own change: PostgreSQL says 40001 (SERIALIZABLE), SQLite says busy while the
// other holds the write lock. The second try, in a new transaction, succeeds.
TEST_P(RetryTest, ATransientFailureIsRetriedAndThenSucceeds) {
    const bool pg = GetParam() == TestBackend::postgresql;
    Session mine(pool_, "mine"), other(pool_, "other");
    int tries = 0, retried = 0;
    RetryPolicy policy(retry_config(3));
    policy.run(
        [&] {
            ++tries;
            mine.transact([&](Session& s) {
                if (tries == 1) {
                    if (pg) {
                        s.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
                        s.execute("SELECT v FROM " + table_ + " WHERE id = 1");
                        other.transact([&](Session& o) {
                            o.execute("UPDATE " + table_ + " SET v = v + 10 WHERE id = 1");
                        });
                    } else {
                        other.begin(Connection::BeginMode::immediate);  // holds the write lock
                        s.connection().limit_transaction_time(200ms);
                    }
                }
                s.execute("UPDATE " + table_ + " SET v = v + 1 WHERE id = 1");
            });
        },
        std::nullopt,
        [&](const Error& e) {
            ++retried;
            EXPECT_EQ(e.code(), pg ? ErrorCode::serialization_failure : ErrorCode::busy) << e.what();
            other.rollback();  // SQLite: the lock goes
        });
    EXPECT_EQ(tries, 2);
    EXPECT_EQ(retried, 1);
    Session check(pool_, "check");
    EXPECT_EQ(check.execute("SELECT v FROM " + table_ + " WHERE id = 1").scalar<std::int64_t>(),
              pg ? 11 : 1);
}

TEST_P(RetryTest, AUniqueViolationIsNeverRetried) {
    Session s(pool_, "t");
    int tries = 0;
    RetryPolicy policy(retry_config(5));
    try {
        policy.run([&] {
            ++tries;
            s.transact([&](Session& t) { t.execute("INSERT INTO " + table_ + " VALUES (1, 5)"); });
        });
        FAIL() << "a duplicate key was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::constraint_violation) << e.what();
    }
    EXPECT_EQ(tries, 1);
}

DBSUP_BOTH_BACKENDS(RetryTest);

// A statement that would run for seconds on either backend.
std::string slow_statement(bool pg) {
    return pg ? "SELECT pg_sleep(5)"
              : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                "WHERE x < 100000000) SELECT COUNT(*) FROM c";
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
}

// Deadlines compose, the smallest remaining winning: a job's deadline cuts a
// checkout short of pool_timeout and a statement short of its own length.
TEST_P(RetryTest, ADeadlineBoundsTheCheckoutAndTheStatements) {
    const bool pg = GetParam() == TestBackend::postgresql;
    auto pool = make_pool(pool_options(1, 0, 30s));
    Session holder(pool, "holder"), late(pool, "late");
    holder.begin();
    auto start = std::chrono::steady_clock::now();
    try {
        late.begin(Connection::BeginMode::deferred, start + 300ms);
        FAIL() << "checked out a connection that is in use";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::pool_timeout) << e.what();
    }
    EXPECT_LT(since(start), 10s) << "waited for pool_timeout (30 s), not the deadline";
    holder.rollback();

    start = std::chrono::steady_clock::now();
    late.begin(Connection::BeginMode::deferred, start + 300ms);
    try {
        late.execute(slow_statement(pg));
        FAIL() << "the slow statement outlived the deadline";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::timeout) << e.what();
    }
    EXPECT_LT(since(start), 4s);
    late.rollback();

    EXPECT_THROW(late.begin(Connection::BeginMode::deferred, start), Error);  // already passed
    EXPECT_FALSE(late.in_transaction());
}

TEST_P(RetryTest, AStatementTimeoutShorterThanTheDeadlineWins) {
    const bool pg = GetParam() == TestBackend::postgresql;
    PoolOptions o = pool_options(1, 0);
    o.statement_timeout = 200ms;
    Session s(make_pool(o), "t");
    const auto start = std::chrono::steady_clock::now();
    s.begin(Connection::BeginMode::deferred, start + 60s);
    EXPECT_THROW(s.execute(slow_statement(pg)), Error);
    EXPECT_LT(since(start), 10s) << "ran until the 60 s deadline";
    s.rollback();
}

TEST(RetryPolicy, GivesUpAfterItsAttemptsAndBeforeTheDeadline) {
    RetryPolicy policy(retry_config(4));
    int tries = 0;
    auto busy = [&] {
        ++tries;
        throw Error(ErrorCode::busy, "locked", "main", "", 5);
    };
    EXPECT_THROW(policy.run(busy), Error);
    EXPECT_EQ(tries, 4);
    tries = 0;
    RetryConfig slow = retry_config(100);
    slow.base_ms = slow.max_ms = 1000;
    EXPECT_THROW(RetryPolicy(slow).run(busy, RetryPolicy::Clock::now() + 20ms), Error);
    EXPECT_LE(tries, 2) << "no pause may run past the deadline";
}

TEST(RetryPolicy, DelaysAreFullJitterUnderTheCap) {
    RetryConfig c = retry_config(10);
    c.base_ms = 10;
    c.max_ms = 100;
    RetryPolicy policy(c);
    std::mt19937_64 random(42);
    std::int64_t largest = 0;
    for (int i = 0; i < 1000; ++i) {
        auto d = policy.delay(6, random).count();  // 10 * 2^5 = 320, capped at 100
        ASSERT_GE(d, 0);
        ASSERT_LE(d, 100);
        largest = std::max(largest, d);
    }
    EXPECT_GT(largest, 80) << "the whole range is used";
    for (int i = 0; i < 100; ++i) ASSERT_LE(policy.delay(1, random).count(), 10);
}

CircuitBreakerConfig breaker_config() {
    CircuitBreakerConfig c;
    c.failure_rate = 0.5;
    c.window = 4;
    c.open_ms = 100;
    c.half_open_calls = 2;
    return c;
}

const Error kLost(ErrorCode::broken_connection, "server closed the connection", "main");

// The runners' pause after a failed claim: 100 ms, doubling to 5 s, and
// short again after a success.
TEST(ErrorBackoff, DoublesUpToItsCapAndStartsOverAfterASuccess) {
    ErrorBackoff b;
    std::vector<std::int64_t> pauses;
    for (int i = 0; i < 8; ++i) pauses.push_back(b.next().count());
    EXPECT_EQ(pauses, (std::vector<std::int64_t>{100, 200, 400, 800, 1600, 3200, 5000, 5000}));
    b.reset();
    EXPECT_EQ(b.next().count(), 100);
}

TEST(CircuitBreaker, OpensOnFailuresFailsFastThenHalfOpensAndCloses) {
    CircuitBreaker b("main", breaker_config());
    b.record_success();
    b.record_success();
    b.record(kLost);
    EXPECT_EQ(b.state(), CircuitBreaker::State::closed) << "the window is not full yet";
    b.record(kLost);  // 2 of 4 failed: rate 0.5
    EXPECT_EQ(b.state(), CircuitBreaker::State::open);
    EXPECT_EQ(b.opened_total(), 1u);
    try {
        b.admit();
        FAIL() << "an open breaker let a call through";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::circuit_open);
        EXPECT_NE(std::string(e.what()).find("database 'main'"), std::string::npos) << e.what();
    }
    EXPECT_EQ(b.rejected_total(), 1u);
    std::this_thread::sleep_for(120ms);
    b.admit();  // two trial calls pass, a third waits for their outcome
    b.admit();
    EXPECT_EQ(b.state(), CircuitBreaker::State::half_open);
    EXPECT_THROW(b.admit(), Error);
    b.record_success();
    b.record_success();
    EXPECT_EQ(b.state(), CircuitBreaker::State::closed);
    b.admit();
}

TEST(CircuitBreaker, AFailedTrialOpensItAgain) {
    CircuitBreaker b("main", breaker_config());
    for (int i = 0; i < 4; ++i) b.record_failure();
    std::this_thread::sleep_for(120ms);
    b.admit();
    b.record(kLost);
    EXPECT_EQ(b.state(), CircuitBreaker::State::open);
    EXPECT_EQ(b.opened_total(), 2u);
}

TEST(CircuitBreaker, CallerMistakesDoNotCount) {
    CircuitBreaker b("main", breaker_config());
    for (int i = 0; i < 10; ++i)
        b.record(Error(ErrorCode::constraint_violation, "duplicate key", "main", "23505"));
    EXPECT_EQ(b.state(), CircuitBreaker::State::closed);
}

// A pool whose database does not answer: after the window fills with failed
// connection attempts, checkouts fail fast without trying to connect.
TEST(CircuitBreaker, APoolFailsFastWhileItsDatabaseIsUnreachable) {
    PoolOptions o;
    o.name = "gone";
    o.breaker = breaker_config();
    o.breaker.open_ms = 60000;
    int attempts = 0;
    ConnectionPool pool(o, [&]() -> std::unique_ptr<Connection> {
        ++attempts;
        throw Error(ErrorCode::connection_failed, "connection refused", "gone");
    });
    for (int i = 0; i < 4; ++i) EXPECT_THROW(pool.acquire("t"), Error);
    EXPECT_EQ(attempts, 4);
    try {
        pool.acquire("t");
        FAIL() << "no fail-fast";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::circuit_open) << e.what();
    }
    EXPECT_EQ(attempts, 4) << "an open breaker does not connect";
    EXPECT_EQ(pool.stats().breaker_rejected_total, 1u);
}

}  // namespace
}  // namespace dbsup::test
