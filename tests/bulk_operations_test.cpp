// Session's bulk_insert / bulk_update / bulk_delete on both real backends:
// 100,000 rows each, values that COPY's text format must escape, NULLs, keys
// that an array literal must escape, bad identifiers and rows of the wrong
// width refused before anything runs, rows and time in the metrics.
#include <gtest/gtest.h>

#include <memory>

#include "shared/db/session.hpp"
#include "shared/monitoring/shm_query_observer.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/scratch_table.hpp"

namespace dbsup::test {
namespace {

constexpr std::int64_t kRows = 100'000;

// Values every text format has to take care with.
std::string tricky_name(std::int64_t id) {
    switch (id % 5) {
        case 0: return "tab\there";
        case 1: return "line\nbreak\r\n";
        case 2: return "back\\slash \\N";
        case 3: return "quote\"s' and , {braces}";
        default: return "plain " + std::to_string(id);
    }
}

class BulkOperationsTest : public BackendTest {
protected:
    void SetUp() override {
        pool_ = make_pool();
        scratch_ = std::make_unique<ScratchTable>(pool_, "bulk",
                                                  "id BIGINT PRIMARY KEY, name TEXT, score BIGINT");
        table_ = scratch_->name();
    }
    std::int64_t scalar(Session& s, const std::string& sql) {
        return s.execute(sql).scalar<std::int64_t>();
    }
    void insert_all(Session& s) {
        std::vector<Params> rows;
        for (std::int64_t id = 1; id <= kRows; ++id)
            rows.push_back({id, tricky_name(id), id % 7 == 0 ? Value(nullptr) : Value(id)});
        EXPECT_EQ(s.bulk_insert(table_, {"id", "name", "score"}, rows),
                  static_cast<std::uint64_t>(kRows));
    }

    std::shared_ptr<ConnectionPool> pool_;
    std::unique_ptr<ScratchTable> scratch_;
    std::string table_;
};

TEST_P(BulkOperationsTest, InsertsAHundredThousandRowsExactly) {
    Session s(pool_, "t");
    insert_all(s);
    s.commit();
    EXPECT_EQ(scalar(s, "SELECT count(*) FROM " + table_), kRows);
    EXPECT_EQ(scalar(s, "SELECT count(*) FROM " + table_ + " WHERE score IS NULL"), kRows / 7);
    std::int64_t expected_sum = 0;
    for (std::int64_t id = 1; id <= kRows; ++id) expected_sum += id % 7 == 0 ? 0 : id;
    EXPECT_EQ(scalar(s, "SELECT sum(score) FROM " + table_), expected_sum);
    for (std::int64_t id = 1; id <= 5; ++id)
        EXPECT_EQ(s.execute("SELECT name FROM " + table_ + " WHERE id = $1", {id})
                      .scalar<std::string>(),
                  tricky_name(id));
    s.commit();
}

TEST_P(BulkOperationsTest, UpdatesAndDeletesAHundredThousandRows) {
    Session s(pool_, "t");
    insert_all(s);
    std::vector<Params> updates;
    for (std::int64_t id = 1; id <= kRows; ++id)
        updates.push_back({id, "new " + tricky_name(id), id * 2});
    EXPECT_EQ(s.bulk_update(table_, "id", {"name", "score"}, updates),
              static_cast<std::uint64_t>(kRows));
    std::vector<Value> even;
    for (std::int64_t id = 2; id <= kRows; id += 2) even.emplace_back(id);
    even.emplace_back(std::int64_t{kRows + 1});  // not there: not counted
    EXPECT_EQ(s.bulk_delete(table_, "id", even), static_cast<std::uint64_t>(kRows / 2));
    s.commit();
    EXPECT_EQ(scalar(s, "SELECT count(*) FROM " + table_), kRows / 2);
    EXPECT_EQ(scalar(s, "SELECT count(*) FROM " + table_ + " WHERE id % 2 = 0"), 0);
    EXPECT_EQ(scalar(s, "SELECT sum(score) FROM " + table_), kRows * kRows / 2);  // 2 * sum of odd ids
    EXPECT_EQ(s.execute("SELECT name FROM " + table_ + " WHERE id = 3").scalar<std::string>(),
              "new " + tricky_name(3));
    s.commit();
}

TEST_P(BulkOperationsTest, DeletesTextKeysThatNeedEscaping) {
    Session s(pool_, "t");
    const std::string keyed = TestDatabases::unique_table("bulk_keys");
    s.execute("CREATE TABLE " + keyed + " (k TEXT PRIMARY KEY)");
    std::vector<Params> rows;
    std::vector<Value> keys;
    for (std::int64_t id = 0; id < 10; ++id) {
        rows.push_back({tricky_name(id) + std::to_string(id)});
        if (id % 2) keys.emplace_back(tricky_name(id) + std::to_string(id));
    }
    s.bulk_insert(keyed, {"k"}, rows);
    EXPECT_EQ(s.bulk_delete(keyed, "k", keys), 5u);
    EXPECT_EQ(scalar(s, "SELECT count(*) FROM " + keyed), 5);
    s.execute("DROP TABLE " + keyed);
    s.commit();
}

TEST_P(BulkOperationsTest, BadIdentifiersAndWidthsAreRefusedBeforeAnythingRuns) {
    Session s(pool_, "t");
    auto expect_usage = [](auto&& f, const std::string& words) {
        try {
            f();
            ADD_FAILURE() << "accepted: " << words;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::usage) << e.what();
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    };
    expect_usage([&] { s.bulk_insert(table_ + "; DROP TABLE " + table_, {"id"}, {{1}}); },
                 "is not an identifier");
    expect_usage([&] { s.bulk_insert(table_, {"id", "na me"}, {{1, "x"}}); }, "'na me'");
    expect_usage([&] { s.bulk_update(table_, "id\"", {"name"}, {{1, "x"}}); }, "'id\"'");
    expect_usage([&] { s.bulk_delete(table_, "1id", {std::int64_t{1}}); }, "'1id'");
    expect_usage([&] { s.bulk_insert(table_, {"id", "name"}, {{1, "a"}, {2}}); },
                 "row 2 has 1 values, expected 2");
    s.rollback();
    EXPECT_EQ(scalar(s, "SELECT count(*) FROM " + table_), 0);  // the table is still there
    s.commit();
}

TEST_P(BulkOperationsTest, ARolledBackBulkInsertLeavesNothing) {
    Session s(pool_, "t");
    insert_all(s);
    s.rollback();
    EXPECT_EQ(scalar(s, "SELECT count(*) FROM " + table_), 0);
    s.commit();
}

TEST_P(BulkOperationsTest, RowsAndTimeAreInTheMetrics) {
    auto slot = std::make_unique<ShmWorkerSlot>();
    ShmQueryObserver observer(*slot, std::chrono::seconds(60));
    Session s(pool_, "t", &observer);
    s.bulk_insert(table_, {"id", "name"}, {{1, "a"}, {2, "b"}, {3, "c"}});
    s.bulk_update(table_, "id", {"score"}, {{1, 10}, {2, 20}});
    s.bulk_delete(table_, "id", {std::int64_t{3}});
    s.commit();
    EXPECT_EQ(slot->get(Counter::bulk_rows_inserted), 3u);
    EXPECT_EQ(slot->get(Counter::bulk_rows_updated), 2u);
    EXPECT_EQ(slot->get(Counter::bulk_rows_deleted), 1u);
    bool found = false;
    for (std::size_t r = 0; r < slot->queries.published(); ++r)
        if (slot->queries.rows[r].read_name() == "bulk_insert:" + table_ + ":bulk") {
            found = true;
            EXPECT_EQ(slot->queries.rows[r].seconds.snapshot().count, 1u);
        }
    EXPECT_TRUE(found);
}

DBSUP_ALL_BACKENDS(BulkOperationsTest);

}  // namespace
}  // namespace dbsup::test
