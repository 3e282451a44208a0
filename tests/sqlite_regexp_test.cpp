// The REGEXP function every SQLite connection gets.
#include <gtest/gtest.h>

#include "shared/db/sqlite_connection.hpp"

namespace dbsup {
namespace {

class SqliteRegexpTest : public ::testing::Test {
protected:
    bool matches(const Value& text, const Value& pattern) {
        return db_.execute("SELECT $1 REGEXP $2", {text, pattern}).scalar<int>() == 1;
    }
    SqliteConnection db_{"main", ":memory:", SqliteSettings{}};
};

TEST_F(SqliteRegexpTest, Matches) {
    EXPECT_TRUE(matches("order-1234", "^order-[0-9]+$"));
    EXPECT_TRUE(matches("an error happened", "err"));  // a search, not a full match
}

TEST_F(SqliteRegexpTest, Misses) { EXPECT_FALSE(matches("invoice-12", "^order-")); }

TEST_F(SqliteRegexpTest, ABadPatternIsFalseNotAnError) {
    EXPECT_FALSE(matches("abc", "([unclosed"));
    EXPECT_FALSE(matches("abc", "([unclosed"));  // cached as bad, still false
}

TEST_F(SqliteRegexpTest, NullIsFalse) {
    EXPECT_FALSE(matches(nullptr, "a"));
    EXPECT_FALSE(matches("a", nullptr));
}

TEST_F(SqliteRegexpTest, FiltersRowsInAQuery) {
    db_.execute_script(
        "CREATE TABLE t(s TEXT); INSERT INTO t VALUES ('a1'),('b2'),('a3'),(NULL);");
    EXPECT_EQ(db_.execute("SELECT COUNT(*) FROM t WHERE s REGEXP '^a'", {}).scalar<int>(), 2);
}

TEST_F(SqliteRegexpTest, ForeignKeysAreEnforced) {
    db_.execute_script(
        "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id));");
    EXPECT_THROW(db_.execute("INSERT INTO c VALUES (42)", {}), std::exception);
}

}  // namespace
}  // namespace dbsup
