// DatabaseManager: one instance per process, thread-local sessions, lazy pools,
// and fork safety (a child builds its own connections; the parent's live on).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <barrier>
#include <set>
#include <thread>

#include "shared/db/database_manager.hpp"
#include "shared/errors.hpp"
#include "tests/support/backend_test.hpp"

namespace dbsup::test {
namespace {

TEST(DatabaseManagerSingleton, IsBuiltExactlyOnceUnder32RacingThreads) {
    constexpr int kThreads = 32;
    std::barrier start(kThreads);
    std::vector<DatabaseManager*> seen(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            seen[static_cast<std::size_t>(i)] = &DatabaseManager::instance();
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(std::set<DatabaseManager*>(seen.begin(), seen.end()).size(), 1u);
    EXPECT_EQ(DatabaseManager::instances_built(), 1u);
}

class DatabaseManagerTest : public BackendTest {
protected:
    void SetUp() override {
        manager().init_worker({{"main", databases_.config(GetParam(), "main")}}, "dbsup-test/1");
    }
    void TearDown() override { manager().close_worker(); }
    static DatabaseManager& manager() { return DatabaseManager::instance(); }

    // Something that identifies the server-side connection of a session.
    std::string connection_identity(Session& s) {
        if (GetParam() == TestBackend::postgresql)
            return s.execute("SELECT pg_backend_pid()").scalar<std::string>();
        return std::to_string(reinterpret_cast<std::uintptr_t>(&s.connection()));
    }
};

TEST_P(DatabaseManagerTest, SameThreadGetsTheSameSession) {
    EXPECT_EQ(&manager().session("main"), &manager().session("main"));
}

TEST_P(DatabaseManagerTest, DifferentThreadsGetDifferentSessions) {
    Session* mine = &manager().session("main");
    Session* theirs = nullptr;
    std::thread([&] { theirs = &manager().session("main"); }).join();
    EXPECT_NE(mine, theirs);
}

TEST_P(DatabaseManagerTest, AThreadsSessionIsReleasedWhenTheThreadEnds) {
    std::thread([&] { manager().session("main").execute("SELECT 1"); }).join();
    PoolStats s = manager().pool("main")->stats();
    EXPECT_EQ(s.in_use, 0u) << "the ended thread's transaction still holds a connection";
    EXPECT_EQ(s.idle, 1u);
}

TEST_P(DatabaseManagerTest, PoolsAreBuiltLazily) {
    EXPECT_TRUE(manager().pool_stats().empty());
    manager().transact("main", [](Session& s) { s.execute("SELECT 1"); });
    ASSERT_EQ(manager().pool_stats().size(), 1u);
    EXPECT_EQ(manager().pool_stats()[0].opened_total, 1u);
}

TEST_P(DatabaseManagerTest, HandlersAreGivenAReadySession) {
    int value = manager().with_session("main", [](Session& s) {
        int v = s.execute("SELECT 5").scalar<int>();
        s.commit();
        return v;
    });
    EXPECT_EQ(value, 5);
}

TEST_P(DatabaseManagerTest, AnUnknownDatabaseIsAClearError) {
    try {
        manager().session("nope");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no database named 'nope'"), std::string::npos);
    }
}

TEST_P(DatabaseManagerTest, ForkedChildBuildsNewConnectionsAndTheParentsKeepWorking) {
    Session& parent_session = manager().session("main");
    std::string parent_identity = connection_identity(parent_session);  // transaction stays open
    auto parent_pool = manager().pool("main");

    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // Exit codes tell the parent which check failed; _exit skips atexit handlers.
        try {
            Session& s = DatabaseManager::instance().session("main");
            if (&s == &parent_session) _exit(3);
            if (DatabaseManager::instance().pool("main") == parent_pool) _exit(4);
            if (connection_identity(s) == parent_identity &&
                GetParam() == TestBackend::postgresql)
                _exit(5);
            s.commit();
            _exit(0);
        } catch (...) {
            _exit(6);
        }
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    // The child never closed the parent's socket: its transaction goes on.
    EXPECT_EQ(connection_identity(parent_session), parent_identity);
    parent_session.commit();
    EXPECT_EQ(parent_pool->stats().closed_total, 0u);
}

DBSUP_BOTH_BACKENDS(DatabaseManagerTest);

}  // namespace
}  // namespace dbsup::test
