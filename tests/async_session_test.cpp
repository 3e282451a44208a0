// The async side of the database layer on both backends (and PostgreSQL
// through PgBouncer): async_transact commits on return, rolls back on throw
// and on cancellation, a failed commit reaches the caller, deadlines cancel
// on the server, the pool times out with the sync pool's error, concurrent
// statements of one session are pipelined and each gets its own answer;
// recycle, leak detection, pre-ping and the shared circuit breaker work from
// the async side.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include "shared/db/database_manager.hpp"
#include "shared/errors.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/run_coroutine.hpp"
#include "tests/support/scratch_table.hpp"

namespace dbsup::test {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

Awaitable<void> sleep_for(std::chrono::milliseconds ms) {
    asio::steady_timer timer(co_await asio::this_coro::executor, ms);
    co_await timer.async_wait(asio::use_awaitable);
}

class AsyncSessionTest : public BackendTest {
protected:
    void SetUp() override { init(databases_.config(GetParam(), "main")); }
    void init(DatabaseConfig config) {
        manager().init_worker({{"main", config}}, "dbsup-test/async");
        scratch_ = std::make_unique<ScratchTable>(manager().pool("main"), "async_items",
                                                  "id INTEGER PRIMARY KEY, name TEXT");
        table_ = scratch_->name();
        insert_ = "INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)";
    }
    void TearDown() override {
        loop_.reset();  // its async pools close with it
        scratch_.reset();
        manager().close_worker();
    }
    // The test's database again, its configuration changed by `change`.
    void reinit(const std::function<void(DatabaseConfig&)>& change) {
        loop_.reset();
        scratch_.reset();
        manager().close_worker();
        DatabaseConfig config = databases_.config(GetParam(), "main");
        change(config);
        init(config);
    }
    // The test's database again, with a pool of `size` and no overflow.
    void reinit_with_pool(std::int64_t size, std::int64_t timeout_ms) {
        reinit([&](DatabaseConfig& config) {
            config.pool_size = size;
            config.max_overflow = 0;
            config.pool_timeout_ms = timeout_ms;
        });
    }
    // One transaction running `sql`, on the test's event loop.
    void transact_once(const std::string& sql) {
        run_loop([&]() -> Awaitable<void> {
            co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
                co_await s.execute(sql);
            });
        });
    }
    // Runs a coroutine to its end on the test's event loop (whose pools live
    // until the test ends); rethrows what it threw.
    template <class F>
    void run_loop(F f) {
        if (!loop_) loop_.emplace();
        run_coroutine(*loop_, std::move(f));
    }
    static DatabaseManager& manager() { return DatabaseManager::instance(); }
    std::int64_t count() {
        return manager().transact("main", [&](Session& s) {
            return s.execute("SELECT COUNT(*) FROM " + table_).scalar<std::int64_t>();
        });
    }
    PoolStats async_stats() {
        for (const PoolStats& p : manager().pool_stats())
            if (p.name == "main/async") return p;
        ADD_FAILURE() << "no main/async pool in pool_stats()";
        return {};
    }

    std::optional<asio::io_context> loop_;
    std::unique_ptr<ScratchTable> scratch_;
    std::string table_, insert_;
};

TEST_P(AsyncSessionTest, TransactCommitsOnReturn) {
    run_loop([&]() -> Awaitable<void> {
        co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
            co_await s.execute(insert_, params_of(1, "one"));
            Result r = co_await s.execute("SELECT name FROM " + table_ + " WHERE id = $1", params_of(1));
            EXPECT_EQ(r.scalar<std::string>(), "one");
        });
    });
    EXPECT_EQ(count(), 1);
    EXPECT_EQ(async_stats().in_use, 0u);
    EXPECT_GE(async_stats().checkouts_total, 1u);
}

TEST_P(AsyncSessionTest, TransactRollsBackWhenTheCoroutineThrows) {
    EXPECT_THROW(run_loop([&]() -> Awaitable<void> {
                     co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
                         co_await s.execute(insert_, params_of(1, "one"));
                         throw std::runtime_error("handler failed");
                     });
                 }),
                 std::runtime_error);
    EXPECT_EQ(count(), 0);
    EXPECT_EQ(async_stats().in_use, 0u);
}

TEST_P(AsyncSessionTest, TransactRollsBackWhenTheCoroutineIsCancelled) {
    bool timed_out = false;
    run_loop([&]() -> Awaitable<void> {
        auto work = manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
            co_await s.execute(insert_, params_of(1, "one"));
            co_await sleep_for(10s);  // cancelled here, its transaction open
        });
        auto first = co_await (std::move(work) || sleep_for(100ms));
        timed_out = first.index() == 1;
    });
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(count(), 0);
    // The pool is still usable afterwards.
    run_loop([&]() -> Awaitable<void> {
        co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
            co_await s.execute(insert_, params_of(2, "two"));
        });
    });
    EXPECT_EQ(count(), 1);
}

TEST_P(AsyncSessionTest, AFailedCommitThrowsToTheAwaitingCaller) {
    ScratchTable parents(manager().pool("main"), "async_parent", "id INTEGER PRIMARY KEY");
    ScratchTable children(manager().pool("main"), "async_child",
                          "id INTEGER PRIMARY KEY, parent INTEGER REFERENCES " + parents.name() +
                              "(id) DEFERRABLE INITIALLY DEFERRED");
    bool statement_passed = false;
    try {
        run_loop([&]() -> Awaitable<void> {
            co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
                co_await s.execute("INSERT INTO " + children.name() + " (id, parent) VALUES (1, 42)");
                statement_passed = true;  // the check waits for COMMIT
            });
        });
        ADD_FAILURE() << "the commit did not throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::constraint_violation) << e.what();
    }
    EXPECT_TRUE(statement_passed);
    EXPECT_EQ(manager().transact("main", [&](Session& s) {
        return s.execute("SELECT COUNT(*) FROM " + children.name()).scalar<std::int64_t>();
    }), 0);
}

TEST_P(AsyncSessionTest, ADeadlineCancelsTheStatementOnTheServer) {
    const std::string endless =
        is_postgres(GetParam()) ? "SELECT pg_sleep(5)"
                                : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                  "SELECT COUNT(*) FROM c";
    const auto deadline = Clock::now() + 300ms;
    Clock::time_point failed_at{};
    try {
        run_loop([&]() -> Awaitable<void> {
            co_await manager().async_transact(
                "main",
                [&](AsyncSession& s) -> Awaitable<void> {
                    co_await s.execute(insert_, params_of(1, "one"));
                    co_await s.execute(endless);
                },
                deadline);
        });
        ADD_FAILURE() << "the statement outlived its deadline";
    } catch (const Error& e) {
        failed_at = Clock::now();
        EXPECT_EQ(e.code(), ErrorCode::timeout) << e.what();
    }
    const auto late = std::chrono::duration_cast<std::chrono::milliseconds>(failed_at - deadline);
    EXPECT_LT(late.count(), 100) << "ms after the deadline";
    EXPECT_EQ(count(), 0);
    if (GetParam() == TestBackend::postgresql) {
        // Nothing of ours is still sleeping on the server.
        const auto sleeping = manager().transact("main", [](Session& s) {
            return s.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' "
                             "AND state = 'active'")
                .scalar<std::int64_t>();
        });
        EXPECT_EQ(sleeping, 0);
    }
    // The next transaction works (on a new connection on PostgreSQL: the old
    // one was discarded after the cancel).
    run_loop([&]() -> Awaitable<void> {
        co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
            co_await s.execute(insert_, params_of(2, "two"));
        });
    });
    EXPECT_EQ(count(), 1);
    EXPECT_EQ(async_stats().in_use, 0u);
}

TEST_P(AsyncSessionTest, AnExhaustedPoolTimesOutWithThePoolsFigures) {
    reinit_with_pool(1, 200);
    std::string message;
    run_loop([&]() -> Awaitable<void> {
        auto holder = manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
            co_await s.execute(insert_, params_of(1, "held"));
            co_await sleep_for(600ms);
        });
        auto waiter = [&]() -> Awaitable<void> {
            co_await sleep_for(50ms);
            try {
                co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
                    co_await s.execute(insert_, params_of(2, "starved"));
                });
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), ErrorCode::pool_timeout);
                message = e.what();
            }
        };
        co_await (std::move(holder) && waiter());
    });
    EXPECT_NE(message.find("pool 'main' timed out after"), std::string::npos) << message;
    EXPECT_NE(message.find("pool_size 1, max_overflow 0, in use 1"), std::string::npos) << message;
    EXPECT_EQ(count(), 1);
    EXPECT_EQ(async_stats().timeouts_total, 1u);
}

TEST_P(AsyncSessionTest, ConcurrentStatementsOfOneSessionEachGetTheirOwnAnswer) {
    constexpr int kCoroutines = 64, kEach = 20;
    int right = 0;
    run_loop([&]() -> Awaitable<void> {
        AsyncSession s = co_await manager().async_session("main");
        auto executor = co_await asio::this_coro::executor;
        int finished = 0;
        asio::steady_timer all_done(executor, Clock::time_point::max());
        for (int c = 0; c < kCoroutines; ++c)
            asio::co_spawn(
                executor,
                [&, c]() -> Awaitable<void> {
                    for (int i = 0; i < kEach; ++i) {
                        const std::int64_t n = c * 1000 + i;
                        Result r = co_await s.execute("SELECT $1 + 0", params_of(n));
                        if (r.scalar<std::int64_t>() == n) ++right;
                    }
                    if (++finished == kCoroutines) all_done.cancel();
                },
                asio::detached);
        boost::system::error_code ec;
        co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        co_await s.commit();
    });
    EXPECT_EQ(right, kCoroutines * kEach);
}

// Statements pipelined in one transaction: one that fails aborts the
// transaction (PostgreSQL), so the one queued behind it fails too, each
// caller hearing its own error; the statement before it got its answer.
TEST_P(AsyncSessionTest, AFailedStatementInAPipelineFailsOnlyWhatCameAfterIt) {
    std::vector<std::string> outcomes(3);
    run_loop([&]() -> Awaitable<void> {
        AsyncSession s = co_await manager().async_session("main");
        co_await s.execute("SELECT 1");  // the transaction is open: the three go together
        auto one = [&](std::size_t i, std::string sql) -> Awaitable<void> {
            try {
                Result r = co_await s.execute(sql);
                outcomes[i] = "ok " + std::to_string(r.scalar<std::int64_t>());
            } catch (const Error& e) {
                outcomes[i] = std::string("error ") + to_string(e.code());
            }
        };
        co_await (one(0, "SELECT 1 + 1") && one(1, "SELECT * FROM no_such_table") &&
                  one(2, "SELECT 3"));
        co_await s.rollback();
    });
    EXPECT_EQ(outcomes[0], "ok 2");
    EXPECT_EQ(outcomes[1].substr(0, 6), "error ") << outcomes[1];
    // PostgreSQL aborts the transaction; SQLite carries on after a failed statement.
    EXPECT_EQ(outcomes[2], is_postgres(GetParam()) ? "error sql" : "ok 3");
}

TEST_P(AsyncSessionTest, TwoHundredConcurrentTransactionsShareAPoolOfFour) {
    reinit_with_pool(4, 30000);
    int committed = 0;
    std::string failure;
    run_loop([&]() -> Awaitable<void> {
        auto executor = co_await asio::this_coro::executor;
        for (int i = 0; i < 200; ++i)
            asio::co_spawn(
                executor,
                [&, i]() -> Awaitable<void> {
                    co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
                        co_await s.execute(insert_, params_of(i, "row"));
                    });
                    ++committed;
                },
                [&](std::exception_ptr e) {
                    try {
                        if (e) std::rethrow_exception(e);
                    } catch (const std::exception& x) {
                        failure = x.what();
                    }
                });
        co_return;
    });
    EXPECT_EQ(committed, 200) << failure;
    EXPECT_EQ(count(), 200);
    const PoolStats stats = async_stats();
    EXPECT_LE(stats.peak_open, 4u);
    EXPECT_EQ(stats.checkouts_total, 200u);
}

// recycle_s and leak_detection_ms work on the async pool as on the sync one:
// a connection past its lifetime is replaced at checkout, and one held past
// the leak threshold is logged once, naming its holder.
TEST_P(AsyncSessionTest, RecycleReplacesAnOldConnectionAndALeakIsLoggedOnce) {
    reinit([](DatabaseConfig& config) {
        config.pool_size = 1;
        config.recycle_s = 1;
        config.leak_detection_ms = 40;
    });
    transact_once("SELECT 1");
    transact_once("SELECT 1");
    EXPECT_EQ(async_stats().opened_total, 1u) << "recycled too early";
    std::this_thread::sleep_for(1100ms);
    transact_once("SELECT 1");
    PoolStats recycled = async_stats();
    EXPECT_EQ(recycled.recycled_total, 1u);
    EXPECT_EQ(recycled.opened_total, 2u);

    std::ostringstream log;
    const auto previous = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
    std::uint64_t leaks_while_held = 0, leaks_later = 0;
    run_loop([&]() -> Awaitable<void> {
        co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
            co_await s.execute("SELECT 1");
            co_await sleep_for(150ms);  // held past leak_detection_ms
            leaks_while_held = async_stats().leaks_total;  // pool_stats() looks for leaks
            leaks_later = async_stats().leaks_total;
        });
    });
    spdlog::set_default_logger(previous);
    EXPECT_EQ(leaks_while_held, 1u);
    EXPECT_EQ(leaks_later, 1u);
    const std::string text = log.str();
    EXPECT_NE(text.find("held for"), std::string::npos) << text;
    const auto holder = text.find("main@thread-");
    ASSERT_NE(holder, std::string::npos) << text;
    EXPECT_NE(text.find("/async", holder), std::string::npos) << text;
    EXPECT_EQ(holder, text.rfind("main@thread-")) << "logged twice: " << text;
}

// One circuit breaker per database, shared by both sides: failed connects of
// the async pool alone open it, and then both pools fail fast without
// trying to connect.
TEST_P(AsyncSessionTest, TheAsyncPoolAloneOpensTheBreakerBothPoolsShare) {
    loop_.reset();
    scratch_.reset();
    manager().close_worker();
    DatabaseConfig config = databases_.config(GetParam(), "main");
    if (GetParam() == TestBackend::sqlite)
        config.url.path = "/nonexistent-dir/x.db";
    else
        config.url.port = 1;  // nothing listens there
    CircuitBreakerConfig breaker;
    breaker.window = 4;
    breaker.open_ms = 60000;
    manager().init_worker({{"main", config}}, "dbsup-test/async", nullptr, breaker);
    std::vector<ErrorCode> codes;
    std::vector<std::string> messages;
    for (int i = 0; i < 5; ++i) {
        try {
            transact_once("SELECT 1");
            codes.push_back(ErrorCode::usage);  // not expected: it connected
        } catch (const Error& e) {
            codes.push_back(e.code());
            messages.push_back(e.what());
        }
    }
    EXPECT_EQ(codes, (std::vector<ErrorCode>{ErrorCode::connection_failed, ErrorCode::connection_failed,
                                             ErrorCode::connection_failed, ErrorCode::connection_failed,
                                             ErrorCode::circuit_open}));
    // libpq's own reason, at once: not the connect timeout's.
    if (GetParam() != TestBackend::sqlite) {
        EXPECT_NE(messages.front().find("Connection refused"), std::string::npos) << messages.front();
    }
    EXPECT_EQ(async_stats().opened_total, 0u);
    try {
        manager().transact("main", [](Session& s) { s.execute("SELECT 1"); });
        ADD_FAILURE() << "the sync pool connected";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::circuit_open) << e.what();
    }
}

// PostgreSQL only (a server can kill a connection; an SQLite file cannot, and
// behind PgBouncer the client's connection outlives the server's): pre_ping
// replaces an idle connection the server killed, and the caller sees nothing.
class AsyncPostgresPoolTest : public AsyncSessionTest {};

TEST_P(AsyncPostgresPoolTest, PrePingReplacesAConnectionTheServerKilled) {
    std::int64_t pid = 0;
    run_loop([&]() -> Awaitable<void> {
        co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
            pid = (co_await s.execute("SELECT pg_backend_pid()")).scalar<std::int64_t>();
        });
    });
    manager().transact("main", [&](Session& s) { s.execute("SELECT pg_terminate_backend($1)", {pid}); });
    std::this_thread::sleep_for(ConnectionPool::kPingIdle + 100ms);
    std::int64_t again = 0;
    run_loop([&]() -> Awaitable<void> {
        co_await manager().async_transact("main", [&](AsyncSession& s) -> Awaitable<void> {
            again = (co_await s.execute("SELECT pg_backend_pid()")).scalar<std::int64_t>();
        });
    });
    EXPECT_NE(again, pid);
    const PoolStats stats = async_stats();
    EXPECT_EQ(stats.preping_failures_total, 1u);
    EXPECT_EQ(stats.opened_total, 2u);
}

// The async runner's completion on PostgreSQL: pipelined with COMMIT, it
// fails when the job is no longer the runner's, and the work is rolled back.
// (SQLite has no UPDATE in a WITH: the runner checks the row count there.)
class AsyncCompletionTest : public AsyncSessionTest {};

TEST_P(AsyncCompletionTest, AGuardedCompletionRollsBackTheWorkOfAJobNoLongerOurs) {
    databases_.drop_queue_tables(GetParam());
    QueueSchema::migrate(manager().session("main"));
    Queue queue(QueueConfig{}, {});
    manager().transact("main", [&](Session& s) {
        queue.enqueue(s, NewJob{"noop", "{}", "", 0, 0, 0, "", 0});
        queue.enqueue(s, NewJob{"noop", "{}", "", 0, 0, 0, "", 0});
    });
    const std::vector<Job> claimed = queue.claim(manager().session("main"), "me/0", 2);
    ASSERT_EQ(claimed.size(), 2u);
    std::vector<std::string> outcomes;
    const std::string bound = queue.bound_statement();
    for (const std::string owner : {"me/0", "someone-else/0"}) {
        run_loop([&]() -> Awaitable<void> {
            const Job& job = claimed[outcomes.size()];
            AsyncSession s = co_await manager().async_session("main");
            co_await s.execute(insert_, params_of(static_cast<std::int64_t>(outcomes.size()), "work"));
            Queue::Completion done = queue.completion(job, owner, Backend::postgresql, bound, true);
            std::vector<PendingStatement> last = done.before;
            last.push_back({done.label, done.sql, done.params});
            try {
                co_await s.commit_after(last);
                outcomes.push_back("committed");
            } catch (const Error& e) {
                const bool lost = std::string_view(e.what()).find(Queue::kLeaseLost) != std::string_view::npos;
                outcomes.push_back(lost ? "lease lost" : e.what());
            }
        });
    }
    EXPECT_EQ(outcomes, (std::vector<std::string>{"committed", "lease lost"}));
    EXPECT_EQ(count(), 1);  // the second job's work was rolled back
    EXPECT_EQ(manager().transact("main", [](Session& s) {
        return s.execute("SELECT COUNT(*) FROM dbsup_jobs WHERE state = 'succeeded'").scalar<std::int64_t>();
    }), 1);
}

DBSUP_ALL_BACKENDS(AsyncSessionTest);
INSTANTIATE_TEST_SUITE_P(Backends, AsyncPostgresPoolTest, ::testing::Values(TestBackend::postgresql),
                         backend_param_name);
INSTANTIATE_TEST_SUITE_P(Backends, AsyncCompletionTest,
                         ::testing::Values(TestBackend::postgresql, TestBackend::pgbouncer),
                         backend_param_name);

}  // namespace
}  // namespace dbsup::test
