#include <gtest/gtest.h>

#include "config/database_url.hpp"

namespace dbsup {
namespace {

TEST(DatabaseUrl, ParsesSqlAlchemySqliteForms) {
    EXPECT_EQ(DatabaseUrl::parse("sqlite:///relative.db").path, "relative.db");
    EXPECT_EQ(DatabaseUrl::parse("sqlite:////abs/path.db").path, "/abs/path.db");
    EXPECT_TRUE(DatabaseUrl::parse("sqlite::memory:").is_memory());
    EXPECT_THROW(DatabaseUrl::parse("sqlite://x.db"), std::invalid_argument);
}

TEST(DatabaseUrl, ParsesPostgres) {
    DatabaseUrl url = DatabaseUrl::parse("postgresql://app%40x@db:6000/my%20db?sslmode=require");
    EXPECT_EQ(url.user, "app@x");
    EXPECT_EQ(url.host, "db");
    EXPECT_EQ(url.port, 6000);
    EXPECT_EQ(url.dbname, "my db");
    EXPECT_EQ(url.params.at("sslmode"), "require");
    DatabaseUrl v6 = DatabaseUrl::parse("postgres://u@[::1]:5433/d");
    EXPECT_EQ(v6.host, "[::1]");
    EXPECT_EQ(v6.port, 5433);
    EXPECT_EQ(DatabaseUrl::parse("postgresql://u@h/d").port, 5432);
}

TEST(DatabaseUrl, RejectsAndNeverEchoesAPassword) {
    try {
        DatabaseUrl::parse("postgresql://u:hunter2@h/d");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos);
    }
}

TEST(DatabaseUrl, RedactsAPasswordFromTheEnvironment) {
    DatabaseUrl url = DatabaseUrl::parse("postgresql://u@h/d");
    url.password = "hunter2";
    EXPECT_EQ(url.redacted(), "postgresql://u:***@h:5432/d");
}

}  // namespace
}  // namespace dbsup
