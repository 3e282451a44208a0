// The one error type of dbsupervisor's database layer. It carries what a caller
// can act on (the code, the database, the SQLSTATE or SQLite result code) and
// answers the questions the pool and the retry policy ask, instead of making them
// catch a chain of backend exception types. Messages never contain secrets.
#pragma once

#include <stdexcept>
#include <string>

namespace dbsup {

enum class ErrorCode {
    usage,                  // the API was used wrongly (a bug in the caller)
    connection_failed,      // could not open a connection
    broken_connection,      // the connection died; it must not be reused
    pool_timeout,           // no connection could be checked out in time
    circuit_open,           // the database's circuit breaker is failing calls fast
    constraint_violation,   // unique, foreign key, not null, check
    serialization_failure,  // retry the transaction
    deadlock,               // retry the transaction
    stale_statement,        // a cached prepared statement outlived a schema change: retry
    busy,                   // SQLite: database locked
    syntax,                 // bad SQL or unknown table/column
    timeout,                // statement cancelled by a timeout
    corrupt,                // SQLite: the file is not a usable database
    sql,                    // any other error the database reported
};

const char* to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message, std::string database = {},
          std::string sqlstate = {}, int sqlite_code = 0);

    ErrorCode code() const noexcept { return code_; }
    const std::string& database() const noexcept { return database_; }
    /// PostgreSQL SQLSTATE, empty for SQLite.
    const std::string& sqlstate() const noexcept { return sqlstate_; }
    /// SQLite extended result code, 0 for PostgreSQL.
    int sqlite_code() const noexcept { return sqlite_code_; }

    /// The connection that raised this must be discarded, not pooled.
    bool poisons_connection() const noexcept;
    /// Running the same work again may succeed.
    bool is_retryable() const noexcept;

private:
    ErrorCode code_;
    std::string database_;
    std::string sqlstate_;
    int sqlite_code_;
};

}  // namespace dbsup
