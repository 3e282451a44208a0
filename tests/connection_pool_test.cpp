// ConnectionPool on both backends: bounds under contention, the documented
// timeout error, overflow closing, LIFO reuse, recycling, pre-ping, leak logs.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "config/password_resolver.hpp"
#include "shared/db/engine.hpp"
#include "shared/db/postgres_connection.hpp"
#include "shared/db/session.hpp"
#include "shared/errors.hpp"
#include "tests/support/backend_test.hpp"

namespace dbsup::test {
namespace {

using namespace std::chrono_literals;

class ConnectionPoolTest : public BackendTest {};

TEST_P(ConnectionPoolTest, NeverExceedsSizePlusOverflowUnder16Threads) {
    auto pool = make_pool(pool_options(3, 2, 20s));
    std::atomic<int> in_flight{0}, most{0}, done{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 40; ++i) {
                ConnectionLease lease = pool->acquire("worker");
                int now = ++in_flight;
                int seen = most.load();
                while (now > seen && !most.compare_exchange_weak(seen, now)) {}
                lease->execute("SELECT 1", {});
                std::this_thread::sleep_for(200us);
                --in_flight;
                ++done;
            }
        });
    for (auto& t : threads) t.join();
    PoolStats s = pool->stats();
    EXPECT_EQ(done.load(), 16 * 40);
    EXPECT_LE(most.load(), 5);
    EXPECT_GE(most.load(), 2) << "the threads never overlapped: the test proved nothing";
    EXPECT_LE(s.peak_open, 5u);
    EXPECT_LE(s.idle, 3u);
    EXPECT_EQ(s.in_use, 0u);
    EXPECT_EQ(s.checkouts_total, 16u * 40u);
    EXPECT_EQ(s.timeouts_total, 0u);
}

TEST_P(ConnectionPoolTest, CheckoutTimesOutWithTheDocumentedError) {
    auto pool = make_pool(pool_options(1, 0, 150ms));
    ConnectionLease held = pool->acquire("holder");
    auto start = std::chrono::steady_clock::now();
    try {
        pool->acquire("second");
        FAIL() << "checkout did not time out";
    } catch (const Error& e) {
        auto waited = std::chrono::steady_clock::now() - start;
        EXPECT_GE(waited, 140ms);
        EXPECT_EQ(e.code(), ErrorCode::pool_timeout);
        std::string what = e.what();
        for (const char* part : {"pool 'main' timed out after", "pool_size 1", "max_overflow 0",
                                 "in use 1", "idle 0", "waiting 1"})
            EXPECT_NE(what.find(part), std::string::npos) << part << " missing in: " << what;
    }
    EXPECT_EQ(pool->stats().timeouts_total, 1u);
}

TEST_P(ConnectionPoolTest, AWaiterGetsTheConnectionWhenItIsReturned) {
    auto pool = make_pool(pool_options(1, 0, 5s));
    auto held = std::make_unique<ConnectionLease>(pool->acquire("first"));
    std::uint64_t id = (*held)->pool_state.id;
    std::thread waiter([&] {
        ConnectionLease lease = pool->acquire("second");
        EXPECT_EQ(lease->pool_state.id, id);
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(pool->stats().waiting, 1u);
    held.reset();
    waiter.join();
    EXPECT_EQ(pool->stats().opened_total, 1u);
}

TEST_P(ConnectionPoolTest, OverflowConnectionsAreClosedOnReturn) {
    auto pool = make_pool(1, 1);
    {
        ConnectionLease a = pool->acquire();
        ConnectionLease b = pool->acquire();
        EXPECT_EQ(pool->stats().overflow, 1u);
    }
    PoolStats s = pool->stats();
    EXPECT_EQ(s.opened_total, 2u);
    EXPECT_EQ(s.closed_total, 1u);
    EXPECT_EQ(s.idle, 1u);
    EXPECT_EQ(s.overflow, 0u);
}

TEST_P(ConnectionPoolTest, ReusesTheMostRecentlyReturnedConnection) {
    auto pool = make_pool(2, 0);
    std::uint64_t second_id = 0;
    {
        ConnectionLease a = pool->acquire();
        ConnectionLease b = pool->acquire();
        second_id = b->pool_state.id;
        a.release();
        b.release();  // b is now the most recent
    }
    EXPECT_EQ(pool->acquire()->pool_state.id, second_id);
}

TEST_P(ConnectionPoolTest, RollsBackWhatALeaseLeftOpen) {
    auto pool = make_pool(1, 0);
    std::string table = TestDatabases::unique_table("rb");
    {
        ConnectionLease lease = pool->acquire();
        lease->execute("CREATE TABLE " + table + " (v INTEGER)", {});
        lease->begin();
        lease->execute("INSERT INTO " + table + " VALUES (1)", {});
    }
    ConnectionLease lease = pool->acquire();
    EXPECT_FALSE(lease->in_transaction());
    EXPECT_EQ(lease->execute("SELECT COUNT(*) FROM " + table, {}).scalar<int>(), 0);
    lease->execute("DROP TABLE " + table, {});
    EXPECT_EQ(pool->stats().opened_total, 1u);
}

TEST_P(ConnectionPoolTest, RecycleReplacesOldConnections) {
    PoolOptions o = pool_options(1, 0);
    o.recycle = 200ms;
    auto pool = make_pool(o);
    std::uint64_t first = pool->acquire()->pool_state.id;
    EXPECT_EQ(pool->acquire()->pool_state.id, first) << "recycled too early";
    std::this_thread::sleep_for(260ms);
    std::uint64_t second = pool->acquire()->pool_state.id;
    EXPECT_NE(second, first);
    PoolStats s = pool->stats();
    EXPECT_EQ(s.recycled_total, 1u);
    EXPECT_EQ(s.closed_total, 1u);
}

TEST_P(ConnectionPoolTest, AFailedOpenFreesItsPlace) {
    DatabaseConfig db = databases_.config(GetParam());
    if (GetParam() == TestBackend::sqlite)
        db.url.path = "/nonexistent-dir/x.db";
    else
        db.url.port = 1;  // nothing listens there
    auto engine = std::make_shared<Engine>(db, PasswordResolver::resolve(db), "test");
    ConnectionPool pool(pool_options(1, 0), [engine] { return engine->connect(); });
    for (int i = 0; i < 3; ++i) {
        try {
            pool.acquire();
            FAIL();
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::connection_failed) << e.what();
        }
    }
    EXPECT_EQ(pool.stats().timeouts_total, 0u);
}

TEST_P(ConnectionPoolTest, LeakDetectionLogsTheHolderOnce) {
    std::ostringstream log;
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
    {
        PoolOptions o;
        o.leak_detection = 40ms;
        auto pool = make_pool(o);
        ConnectionLease lease = pool->acquire("orders-handler");
        std::this_thread::sleep_for(250ms);
        EXPECT_EQ(pool->stats().leaks_total, 1u);
    }
    spdlog::set_default_logger(previous);
    std::string text = log.str();
    EXPECT_NE(text.find("held for"), std::string::npos) << text;
    EXPECT_NE(text.find("'orders-handler'"), std::string::npos) << text;
    EXPECT_EQ(text.find("orders-handler"), text.rfind("orders-handler")) << "logged twice";
}

DBSUP_BOTH_BACKENDS(ConnectionPoolTest);

// PostgreSQL only: a server can kill a connection; an SQLite file cannot.
class PostgresPoolTest : public ::testing::Test {
protected:
    TestDatabases databases_;  // first: the pools below are built from it
    std::shared_ptr<ConnectionPool> pool_ =
        databases_.pool(TestBackend::postgresql, pool_options(1, 0));
    std::shared_ptr<ConnectionPool> killer_ = databases_.pool(TestBackend::postgresql, {});

    void kill_idle_connection() {
        int pid = 0;
        {
            ConnectionLease lease = pool_->acquire();
            pid = dynamic_cast<PostgresConnection&>(*lease).backend_pid();
        }
        ConnectionLease killer = killer_->acquire();
        killer->execute("SELECT pg_terminate_backend($1)", {static_cast<std::int64_t>(pid)});
        std::this_thread::sleep_for(50ms);  // let the backend exit
    }
};

TEST_F(PostgresPoolTest, PrePingReplacesAConnectionTheServerKilled) {
    kill_idle_connection();
    std::this_thread::sleep_for(ConnectionPool::kPingIdle + 100ms);
    ConnectionLease lease = pool_->acquire();
    EXPECT_EQ(lease->execute("SELECT 1", {}).scalar<int>(), 1);  // no error for the caller
    PoolStats s = pool_->stats();
    EXPECT_EQ(s.preping_failures_total, 1u);
    EXPECT_EQ(s.opened_total, 2u);
}

TEST_F(PostgresPoolTest, ARecentlyUsedConnectionIsHandedOutWithoutAPing) {
    kill_idle_connection();
    ConnectionLease lease = pool_->acquire();  // within kPingIdle: no round trip
    EXPECT_EQ(pool_->stats().preping_failures_total, 0u);
    EXPECT_THROW(lease->execute("SELECT 1", {}), Error);
    EXPECT_TRUE(lease->broken());
}

}  // namespace
}  // namespace dbsup::test
