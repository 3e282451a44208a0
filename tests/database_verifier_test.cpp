// Start-up verification: every database checked, optional ones degrade.
#include <gtest/gtest.h>

#include "shared/db/database_verifier.hpp"
#include "tests/support/test_databases.hpp"

namespace dbsup::test {
namespace {

TEST(DatabaseVerifier, ReportsEachDatabaseAndDegradesOptionalOnes) {
    TestDatabases dbs;
    Config config;
    config.databases["main"] = dbs.config(TestBackend::sqlite, "main");
    config.databases["pg"] = dbs.config(TestBackend::postgresql, "pg");
    DatabaseConfig down = dbs.config(TestBackend::postgresql, "down");
    down.url.port = 1;
    down.optional = true;
    config.databases["down"] = down;

    auto statuses = DatabaseVerifier::verify(config, "dbsup-test");
    ASSERT_EQ(statuses.size(), 3u);
    const auto& d = statuses[0];  // name order: down, main, pg
    EXPECT_EQ(d.name, "down");
    EXPECT_TRUE(d.degraded());
    EXPECT_FALSE(d.error.empty());
    EXPECT_TRUE(statuses[1].ok) << statuses[1].error;
    EXPECT_NE(statuses[1].version.find("SQLite"), std::string::npos);
    EXPECT_TRUE(statuses[2].ok) << statuses[2].error;
    EXPECT_NE(statuses[2].version.find("PostgreSQL 15"), std::string::npos);
    EXPECT_TRUE(DatabaseVerifier::all_usable(statuses));

    config.databases["down"].optional = false;
    EXPECT_FALSE(DatabaseVerifier::all_usable(DatabaseVerifier::verify(config, "dbsup-test")));
}

TEST(DatabaseVerifier, AWrongPasswordIsReportedWithoutThePassword) {
    TestDatabases dbs;
    Config config;
    DatabaseConfig pg = dbs.config(TestBackend::postgresql, "pg");
    pg.password_env = "";
    pg.url.password = "wrong-pw-123";
    config.databases["pg"] = pg;
    auto statuses = DatabaseVerifier::verify(config, "dbsup-test");
    ASSERT_FALSE(statuses[0].ok);
    EXPECT_NE(statuses[0].error.find("password authentication failed"), std::string::npos)
        << statuses[0].error;
    EXPECT_EQ(statuses[0].error.find("wrong-pw-123"), std::string::npos);
    EXPECT_EQ(statuses[0].url.find("wrong-pw-123"), std::string::npos);
}

}  // namespace
}  // namespace dbsup::test
