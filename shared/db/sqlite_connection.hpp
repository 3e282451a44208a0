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

namespace dbsup {

class SqliteConnection final : public Connection {
public:
    /// @throws Error(connection_failed) naming the database and the file.
    SqliteConnection(const std::string& database, const std::string& path,
                     const SqliteSettings& settings);
    ~SqliteConnection() override;

    Result execute(std::string_view sql, const Params& params) override;
    void execute_script(std::string_view sql) override;
    bool ping() noexcept override;
    bool broken() const noexcept override { return broken_; }
    bool in_transaction() const noexcept override;
    std::string server_version() override;
    Backend backend() const noexcept override { return Backend::sqlite; }

    void limit_transaction_time(std::chrono::milliseconds limit) override;

protected:
    void begin_statement(BeginMode mode) override;

private:
    [[noreturn]] void fail(int rc, std::string_view sql);
    void configure(const SqliteSettings& settings, const std::string& path);

    std::string database_;
    sqlite3* db_ = nullptr;
    bool broken_ = false;
    RegexCache regexes_;
    Clock::time_point deadline_ = Clock::time_point::max();
};

}  // namespace dbsup
