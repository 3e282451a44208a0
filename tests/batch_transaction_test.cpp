// BatchTransaction on both backends: jobs of a claimed batch commit their
// completions together, the next jobs are claimed in that same commit, and a
// batch that cannot commit as planned keeps nothing and claims nothing.
#include <gtest/gtest.h>

#include "shared/errors.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/scratch_table.hpp"
#include "worker/batch_transaction.hpp"
#include "worker/task_registry.hpp"

namespace dbsup::test {
namespace {

class BatchTransactionTest : public BackendTest {
protected:
    void SetUp() override {
        databases_.drop_queue_tables(GetParam());
        pool_ = make_pool(2, 0);
        session_ = std::make_unique<Session>(pool_, "batch-test");
        QueueSchema::migrate(*session_);
        events_ = std::make_unique<ScratchTable>(pool_, "events", "job_id TEXT, k INTEGER UNIQUE");
        Config config;
        TaskConfig insert;
        insert.name = "insert";
        insert.sql = {"INSERT INTO " + events_->name() + " (job_id, k) VALUES (:job_id, :k)"};
        config.tasks["insert"] = insert;
        tasks_ = TaskRegistry::from_config(config);
    }
    std::vector<std::string> enqueue(const std::vector<std::string>& payloads,
                                     const std::string& task = "noop") {
        std::vector<NewJob> jobs;
        for (const std::string& p : payloads) jobs.push_back({task, p, "", 0, 0, 0, "", 0});
        return session_->transact([&](Session& s) { return queue_.enqueue_many(s, jobs); });
    }
    // Runs the jobs in one batch and flushes it, claiming claim_next more.
    BatchTransaction::Flushed run_batch(const std::vector<Job>& jobs, std::size_t claim_next) {
        BatchTransaction batch(*session_, queue_, owner_, std::chrono::milliseconds(1000));
        for (const Job& job : jobs)
            EXPECT_FALSE(batch.run(job, *tasks_.find(job.task), nlohmann::json::parse(job.payload)));
        return batch.flush(claim_next);
    }
    std::int64_t count(const std::string& where) {
        return session_->transact([&](Session& s) {
            return s.execute("SELECT COUNT(*) FROM dbsup_jobs WHERE " + where).scalar<std::int64_t>();
        });
    }

    Queue queue_{QueueConfig{}, {}};
    const std::string owner_ = "worker-1";
    std::shared_ptr<ConnectionPool> pool_;
    std::unique_ptr<Session> session_;
    std::unique_ptr<ScratchTable> events_;
    TaskRegistry tasks_;
};

TEST_P(BatchTransactionTest, TheCommitCompletesTheBatchAndClaimsTheNextJobs) {
    enqueue({"{}", "{}", "{}", "{}", "{}"});
    std::vector<Job> first = queue_.claim(*session_, owner_, 2);
    ASSERT_EQ(first.size(), 2u);
    BatchTransaction::Flushed flushed = run_batch(first, 2);
    EXPECT_EQ(flushed.succeeded.size(), 2u);
    EXPECT_TRUE(flushed.redo.empty());
    ASSERT_EQ(flushed.claimed.size(), 2u);
    for (const Job& next : flushed.claimed) {
        EXPECT_NE(next.id, first[0].id);
        EXPECT_NE(next.id, first[1].id);
        Job stored = queue_.find(*session_, next.id).value();
        EXPECT_EQ(stored.state, "running");
        EXPECT_EQ(stored.locked_by, owner_);
        EXPECT_EQ(stored.attempts, 1);
    }
    EXPECT_EQ(count("state = 'succeeded'"), 2);
    EXPECT_EQ(count("state = 'available'"), 1);
    EXPECT_FALSE(session_->in_transaction());
}

TEST_P(BatchTransactionTest, ABatchThatLostALeaseKeepsNothingAndClaimsNothing) {
    enqueue({"{}", "{}", "{}", "{}"});
    std::vector<Job> first = queue_.claim(*session_, owner_, 2);
    ASSERT_EQ(first.size(), 2u);
    session_->transact([&](Session& s) {  // another worker rescued one of them meanwhile
        s.execute("UPDATE dbsup_jobs SET locked_by = 'worker-2' WHERE id = $1", {first[1].id});
    });
    BatchTransaction::Flushed flushed = run_batch(first, 2);
    EXPECT_TRUE(flushed.succeeded.empty());
    EXPECT_EQ(flushed.redo.size(), 2u);
    EXPECT_TRUE(flushed.claimed.empty()) << "jobs were claimed by a rolled-back transaction";
    EXPECT_EQ(count("state = 'available'"), 2);
    EXPECT_EQ(count("state = 'succeeded'"), 0);
}

// On PostgreSQL the SQL tasks' statements go in one pipeline before the
// completion; one failing statement (a duplicate key) loses the whole batch,
// whose jobs are then redone one at a time. On SQLite the failing job alone
// rolls back to its savepoint.
TEST_P(BatchTransactionTest, AFailingSqlJobInTheBatch) {
    enqueue({R"({"k": 1})", R"({"k": 2})", R"({"k": 1})"}, "insert");
    std::vector<Job> jobs = queue_.claim(*session_, owner_, 3);
    ASSERT_EQ(jobs.size(), 3u);
    BatchTransaction batch(*session_, queue_, owner_, std::chrono::milliseconds(1000));
    std::size_t failed = 0;
    for (const Job& job : jobs)
        if (batch.run(job, *tasks_.find("insert"), nlohmann::json::parse(job.payload))) ++failed;
    BatchTransaction::Flushed flushed = batch.flush(5);
    const std::int64_t rows = session_->transact([&](Session& s) {
        return s.execute("SELECT COUNT(*) FROM " + events_->name()).scalar<std::int64_t>();
    });
    if (is_postgres(GetParam())) {
        EXPECT_EQ(failed, 0u) << "the statements were run before the flush";
        EXPECT_EQ(flushed.redo.size(), 3u);
        EXPECT_TRUE(flushed.succeeded.empty());
        EXPECT_EQ(rows, 0);
    } else {
        EXPECT_EQ(failed, 1u);
        EXPECT_EQ(flushed.succeeded.size(), 2u);
        EXPECT_EQ(rows, 2);
    }
    EXPECT_TRUE(flushed.claimed.empty()) << "nothing was left to claim";
}

// A transient error inside a job's work (SQLite busy, a deadlock) is
// contention, not a failure of the job: the batch is redone one job at a time
// under the retry policy, and no job is recorded as failed.
TEST_P(BatchTransactionTest, ATransientErrorInAJobRedoesTheBatchInsteadOfFailingTheJob) {
    enqueue({"{}", "{}"});
    std::vector<Job> jobs = queue_.claim(*session_, owner_, 2);
    ASSERT_EQ(jobs.size(), 2u);
    TaskDefinition busy{"busy", "main", 0,
                        [](const Job&, const nlohmann::json&, Session&) {
                            throw Error(ErrorCode::busy, "database is locked");
                        },
                        true,
                        {}};
    BatchTransaction batch(*session_, queue_, owner_, std::chrono::milliseconds(1000));
    EXPECT_FALSE(batch.run(jobs[0], *tasks_.find("noop"), nlohmann::json::object()));
    EXPECT_FALSE(batch.run(jobs[1], busy, nlohmann::json::object()))
        << "a busy database was charged to the job";
    BatchTransaction::Flushed flushed = batch.flush(0);
    EXPECT_EQ(flushed.redo.size(), 2u);
    EXPECT_TRUE(flushed.succeeded.empty());
}

DBSUP_ALL_BACKENDS(BatchTransactionTest);

}  // namespace
}  // namespace dbsup::test
