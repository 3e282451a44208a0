// Query and transaction tracking on both backends: every statement a Session
// runs is counted and timed in a real shared-memory slot layout, errors by
// class, and a slow query is counted and logged once with its labels and
// without its parameter values.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>

#include "shared/db/session.hpp"
#include "shared/monitoring/shm_query_observer.hpp"
#include "shared/monitoring/track_query.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/scratch_table.hpp"

namespace dbsup::test {
namespace {

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// Sends spdlog's default logger into a string for one test.
class CapturedLog {
public:
    CapturedLog() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
    }
    ~CapturedLog() { spdlog::set_default_logger(previous_); }
    std::string text() const { return out_.str(); }

private:
    std::ostringstream out_;
    std::shared_ptr<spdlog::logger> previous_;
};

constexpr std::size_t kTotal = ShmLabelRow::kCounters;  // row_count(): the histogram's count

std::uint64_t row_count(const ShmLabelTable& table, const std::string& name, std::size_t column) {
    for (std::size_t r = 0; r < table.published(); ++r) {
        const ShmLabelRow& row = table.rows[r];
        if (row.read_name() != name) continue;
        return column == kTotal ? row.seconds.snapshot().count : row.counters[column].load();
    }
    return 0;
}

std::uint64_t all_queries(const ShmWorkerSlot& slot) {
    return ShmQueryObserver::all_queries(slot).count;
}

class QueryTrackingTest : public BackendTest {
protected:
    void SetUp() override {
        pool_ = make_pool();
        scratch_ = std::make_unique<ScratchTable>(pool_, "tracked",
                                                  "id INTEGER PRIMARY KEY, name TEXT");
        table_ = scratch_->name();
    }
    bool pg() const { return GetParam() == TestBackend::postgresql; }

    std::unique_ptr<ShmWorkerSlot> slot_ = std::make_unique<ShmWorkerSlot>();
    ShmQueryObserver observer_{*slot_, std::chrono::milliseconds(50)};
    std::shared_ptr<ConnectionPool> pool_;
    std::unique_ptr<ScratchTable> scratch_;
    std::string table_;
};

TEST_P(QueryTrackingTest, EveryStatementIsCountedUnderItsLabel) {
    const QueryLabel label{"insert", table_, "test"};
    Session s(pool_, "t", &observer_);
    s.execute(label, "INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)", {1, "a"});
    s.execute(label, "INSERT INTO " + table_ + " (id, name) VALUES ($1, $2)", {2, "b"});
    s.execute("SELECT COUNT(*) FROM " + table_);
    s.commit();
    EXPECT_EQ(all_queries(*slot_), 3u);
    EXPECT_EQ(row_count(slot_->queries, label.text, kTotal), 2u);
    EXPECT_EQ(row_count(slot_->queries, "select:-:sql", kTotal), 1u);
    EXPECT_EQ(slot_->timer(Timer::query).snapshot().count, 0u);  // every label found a row
    EXPECT_EQ(slot_->get(Counter::slow_queries), 0u);
}

TEST_P(QueryTrackingTest, TransactionsAreCountedCommittedOrRolledBack) {
    Session s(pool_, "t", &observer_);
    s.transact([&](Session& t) { t.execute("INSERT INTO " + table_ + " VALUES (1, 'a')"); });
    EXPECT_THROW(s.transact([&](Session& t) {
        t.execute("INSERT INTO " + table_ + " VALUES (2, 'b')");
        throw std::runtime_error("the caller changed its mind");
    }), std::runtime_error);
    s.execute("INSERT INTO " + table_ + " VALUES (3, 'c')");
    s.rollback();
    EXPECT_EQ(slot_->get(Counter::transactions_committed), 1u);
    EXPECT_EQ(slot_->get(Counter::transactions_rolled_back), 2u);
    EXPECT_EQ(slot_->timer(Timer::transaction).snapshot().count, 3u);
}

TEST_P(QueryTrackingTest, ErrorsAreCountedByClass) {
    const QueryLabel label{"insert", table_, "test"};
    Session s(pool_, "t", &observer_);
    s.transact([&](Session& t) {
        t.execute(label, "INSERT INTO " + table_ + " VALUES (1, 'a')");
    });
    EXPECT_THROW(s.transact([&](Session& t) {
        t.execute(label, "INSERT INTO " + table_ + " VALUES (1, 'again')");
    }), Error);
    EXPECT_THROW(s.transact([&](Session& t) { t.execute("SELEC nothing"); }), Error);
    EXPECT_EQ(slot_->get(Counter::query_errors), 2u);
    EXPECT_EQ(row_count(slot_->queries, label.text, ShmQueryObserver::kErrors), 1u);
    EXPECT_EQ(row_count(slot_->errors, pg() ? "postgresql:23" : "sqlite:19", 0), 1u);
    EXPECT_EQ(row_count(slot_->errors, pg() ? "postgresql:42" : "sqlite:1", 0), 1u);
}

TEST_P(QueryTrackingTest, ASlowQueryIsCountedAndLoggedOnceWithoutItsParameters) {
    const QueryLabel label{"probe", table_, "slowtest"};
    const std::string secret = "param-value-never-logged";
    CapturedLog log;
    Session s(pool_, "t", &observer_);
    if (pg()) {
        s.execute(label, "SELECT pg_sleep(0.15), $1::text", {secret});
    } else {  // a REGEXP over 200,000 generated rows
        s.execute(label,
                  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                  "WHERE x < 200000) SELECT COUNT(*) FROM c WHERE ('n' || x || $1) REGEXP '7.*7'",
                  {secret});
    }
    s.execute(label, "SELECT $1", {secret});  // fast: not slow
    s.commit();
    EXPECT_EQ(slot_->get(Counter::slow_queries), 1u);
    EXPECT_EQ(row_count(slot_->queries, label.text, ShmQueryObserver::kSlow), 1u);
    EXPECT_EQ(row_count(slot_->queries, label.text, kTotal), 2u);
    const std::string text = log.text();
    EXPECT_EQ(occurrences(text, "slow query"), 1u) << text;
    EXPECT_EQ(occurrences(text, label.text), 1u) << text;
    EXPECT_EQ(occurrences(text, secret), 0u) << text;
}

DBSUP_BOTH_BACKENDS(QueryTrackingTest);

TEST(TrackQuery, PassesResultsAndExceptionsThroughAndCountsThem) {
    auto slot = std::make_unique<ShmWorkerSlot>();
    ShmQueryObserver observer(*slot, std::chrono::milliseconds(1000));
    const QueryLabel label{"call", "-", "unit"};
    EXPECT_EQ(track_query(&observer, label, "", [] { return 42; }), 42);
    EXPECT_THROW(track_query(&observer, label, "", []() -> int {
        throw Error(ErrorCode::busy, "locked", "main", "", 5);
    }), Error);
    EXPECT_EQ(track_query(nullptr, label, "", [] { return 7; }), 7);  // no observer: untracked
    EXPECT_EQ(all_queries(*slot), 2u);
    EXPECT_EQ(slot->get(Counter::query_errors), 1u);
    EXPECT_EQ(row_count(slot->errors, "sqlite:5", 0), 1u);
}

}  // namespace
}  // namespace dbsup::test
