// A connection to an SQLite file (or :memory:), opened in WAL mode with a busy
// timeout, foreign keys on, and the REGEXP function registered. Only this unit
// and its source include <sqlite3.h>.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "shared/db/connection.hpp"
#include "shared/db/regex_cache.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace dbsup {

class SqliteConnection final : public Connection {
public:
    /// @throws Error(connection_failed) naming the database and the file.
    /// statement_cache_size bounds the cache of prepared parameterised statements.
    SqliteConnection(const std::string& database, const std::string& path,
                     const SqliteSettings& settings, std::size_t statement_cache_size = 100);
    ~SqliteConnection() override;

    Result execute(std::string_view sql, const Params& params) override;
    void execute_script(std::string_view sql) override;
    bool ping() noexcept override;
    /// sqlite3_interrupt(): thread-safe while the connection is open.
    void cancel() noexcept override;
    bool broken() const noexcept override { return broken_; }
    bool in_transaction() const noexcept override;
    std::string server_version() override;
    Backend backend() const noexcept override { return Backend::sqlite; }
    StatementCacheCounts take_statement_counts() noexcept override {
        return statements_.take_counts();
    }
    void insert_rows(const std::string& table, const std::vector<std::string>& columns,
                     const std::vector<Params>& rows) override;

    void limit_transaction_time(std::chrono::milliseconds limit) override;

protected:
    void begin_statement(BeginMode mode) override;

private:
    [[noreturn]] void fail(int rc, std::string_view sql);
    void set_journal_mode(const SqliteSettings& settings);
    void configure(const SqliteSettings& settings, const std::string& path);
    /// The prepared statement for sql: from (or into) the cache when cached.
    sqlite3_stmt* statement(std::string_view sql, bool cached);

    std::string database_;
    sqlite3* db_ = nullptr;
    bool broken_ = false;
    RegexCache regexes_;
    StatementCache<sqlite3_stmt*> statements_;
    Clock::time_point deadline_ = Clock::time_point::max();
};

}  // namespace dbsup
