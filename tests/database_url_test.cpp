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

// The resolved configuration reaches workers as text: every URL must parse
// back to itself, whatever its names hold (a decoded '?' once ended the
// database name early in the workers, which then refused the URL).
TEST(DatabaseUrl, AwkwardUrlsRoundTripThroughTheirPrintedForm) {
    for (const char* text :
         {"postgresql://a%3Ab@h:5433/db%3Fname", "postgresql://us%40er@h/d%2Fb%25x",
          "postgresql://u@[::1]:5432/%C3%A9t%C3%A9%20db?sslmode=require",
          "postgresql://u@h/d?sslrootcert=%2Ftmp%2Fa%26b%3Dc.pem&connect_timeout=3",
          "postgresql://h/plain", "sqlite:////tmp/a%3Fb.db", "sqlite::memory:"}) {
        DatabaseUrl url = DatabaseUrl::parse(text);
        DatabaseUrl again = DatabaseUrl::parse(url.redacted());
        EXPECT_EQ(again.user, url.user) << text;
        EXPECT_EQ(again.host, url.host) << text;
        EXPECT_EQ(again.port, url.port) << text;
        EXPECT_EQ(again.dbname, url.dbname) << text;
        EXPECT_EQ(again.params, url.params) << text;
        EXPECT_EQ(again.path, url.path) << text;
    }
    EXPECT_EQ(DatabaseUrl::parse("postgresql://a%3Ab@h/db%3Fname").dbname, "db?name");
}

}  // namespace
}  // namespace dbsup
