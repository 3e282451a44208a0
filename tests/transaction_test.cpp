// Transaction scope objects: commit, explicit rollback, scope exit, exception.
#include <gtest/gtest.h>

#include "shared/db/transaction.hpp"
#include "shared/errors.hpp"
#include "tests/support/backend_test.hpp"

namespace dbsup::test {
namespace {

class TransactionTest : public BackendTest {
protected:
    void SetUp() override {
        pool_ = make_pool();
        table_ = TestDatabases::unique_table("tx");
        session_ = std::make_unique<Session>(pool_, "tx-test");
        session_->execute("CREATE TABLE " + table_ + " (v INTEGER)");
        session_->commit();
    }
    void TearDown() override {
        session_->rollback();
        session_->execute("DROP TABLE " + table_);
        session_->commit();
    }
    std::int64_t count() {
        std::int64_t n = session_->execute("SELECT COUNT(*) FROM " + table_).scalar<std::int64_t>();
        session_->commit();
        return n;
    }
    void insert(Transaction& tx) { tx.execute("INSERT INTO " + table_ + " (v) VALUES ($1)", {1}); }

    std::shared_ptr<ConnectionPool> pool_;
    std::string table_;
    std::unique_ptr<Session> session_;
};

TEST_P(TransactionTest, CommitMakesWorkStick) {
    Transaction tx(*session_);
    insert(tx);
    tx.commit();
    EXPECT_FALSE(tx.active());
    EXPECT_EQ(count(), 1);
}

TEST_P(TransactionTest, ExplicitRollbackDiscardsWork) {
    Transaction tx(*session_);
    insert(tx);
    tx.rollback();
    EXPECT_EQ(count(), 0);
}

TEST_P(TransactionTest, RollsBackWhenDestroyedWithoutCommit) {
    { Transaction tx(*session_); insert(tx); }
    EXPECT_EQ(count(), 0);
    EXPECT_EQ(pool_->stats().in_use, 0u);
}

TEST_P(TransactionTest, RollsBackWhenAnExceptionLeavesTheScope) {
    try {
        Transaction tx(*session_);
        insert(tx);
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(count(), 0);
}

TEST_P(TransactionTest, SecondCommitIsAUsageError) {
    Transaction tx(*session_);
    tx.commit();
    try {
        tx.commit();
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::usage);
    }
}

TEST_P(TransactionTest, NestedBeginIsAUsageError) {
    Transaction tx(*session_);
    EXPECT_THROW(Transaction inner(*session_), Error);
}

DBSUP_ALL_BACKENDS(TransactionTest);

}  // namespace
}  // namespace dbsup::test
