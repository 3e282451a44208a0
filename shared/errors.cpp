#include "shared/errors.hpp"

namespace dbsup {
namespace {

std::string with_database(const std::string& database, const std::string& message) {
    return database.empty() ? message : "database '" + database + "': " + message;
}

}  // namespace

const char* to_string(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::usage: return "usage";
        case ErrorCode::connection_failed: return "connection_failed";
        case ErrorCode::broken_connection: return "broken_connection";
        case ErrorCode::pool_timeout: return "pool_timeout";
        case ErrorCode::circuit_open: return "circuit_open";
        case ErrorCode::constraint_violation: return "constraint_violation";
        case ErrorCode::serialization_failure: return "serialization_failure";
        case ErrorCode::deadlock: return "deadlock";
        case ErrorCode::stale_statement: return "stale_statement";
        case ErrorCode::busy: return "busy";
        case ErrorCode::syntax: return "syntax";
        case ErrorCode::timeout: return "timeout";
        case ErrorCode::corrupt: return "corrupt";
        case ErrorCode::sql: return "sql";
    }
    return "unknown";
}

Error::Error(ErrorCode code, const std::string& message, std::string database,
             std::string sqlstate, int sqlite_code)
    : std::runtime_error(with_database(database, message)),
      code_(code),
      database_(std::move(database)),
      sqlstate_(std::move(sqlstate)),
      sqlite_code_(sqlite_code) {}

bool Error::poisons_connection() const noexcept {
    return code_ == ErrorCode::broken_connection || code_ == ErrorCode::connection_failed ||
           code_ == ErrorCode::corrupt;
}

bool Error::is_retryable() const noexcept {
    switch (code_) {
        case ErrorCode::broken_connection:
        case ErrorCode::serialization_failure:
        case ErrorCode::deadlock:
        case ErrorCode::stale_statement:
        case ErrorCode::busy:
            return true;
        case ErrorCode::connection_failed:
            // Too many connections (53300) and a server starting up (57P03) pass.
            return sqlstate_ == "53300" || sqlstate_ == "57P03" || sqlstate_.empty();
        default:
            return false;
    }
}

}  // namespace dbsup
