// SQLite through its C API. Statements are prepared, bound by $N name (so the
// same SQL text works on PostgreSQL), stepped and finalized by an RAII holder.
#include "shared/db/sqlite_connection.hpp"

#include <sqlite3.h>

#include <charconv>
#include <cstring>

#include "shared/errors.hpp"

namespace dbsup {
namespace {

struct StatementDeleter {
    void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

ErrorCode classify(int rc) {
    switch (rc & 0xff) {
        case SQLITE_CONSTRAINT: return ErrorCode::constraint_violation;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return ErrorCode::busy;
        case SQLITE_INTERRUPT: return ErrorCode::timeout;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_NOMEM: return ErrorCode::corrupt;
        default: return ErrorCode::sql;
    }
}

// X REGEXP Y calls regexp(Y, X): the pattern comes first. NULL on either side,
// or a pattern that does not compile, is a non-match rather than an error.
void regexp_function(sqlite3_context* ctx, int, sqlite3_value** argv) {
    auto* cache = static_cast<RegexCache*>(sqlite3_user_data(ctx));
    const auto* pattern = sqlite3_value_text(argv[0]);
    const auto* text = sqlite3_value_text(argv[1]);
    if (!pattern || !text) return sqlite3_result_int(ctx, 0);
    const std::regex* re = cache->find_or_compile(reinterpret_cast<const char*>(pattern));
    if (!re) return sqlite3_result_int(ctx, 0);
    const char* begin = reinterpret_cast<const char*>(text);
    bool match = std::regex_search(begin, begin + sqlite3_value_bytes(argv[1]), *re);
    sqlite3_result_int(ctx, match ? 1 : 0);
}

// The 1-based index into params that the statement's parameter `index` names.
std::size_t parameter_number(sqlite3_stmt* stmt, int index) {
    const char* name = sqlite3_bind_parameter_name(stmt, index);
    if (!name) return static_cast<std::size_t>(index);  // a bare "?"
    std::size_t number = 0;
    const char* digits = name + 1;
    auto [end, ec] = std::from_chars(digits, digits + std::strlen(digits), number);
    if (ec != std::errc{} || *end != '\0' || number == 0)
        throw Error(ErrorCode::usage, std::string("parameter ") + name +
                                          " is not positional; write $1, $2, ...");
    return number;
}

void bind(sqlite3_stmt* stmt, const Params& params) {
    int count = sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= count; ++i) {
        std::size_t n = parameter_number(stmt, i);
        if (n > params.size())
            throw Error(ErrorCode::usage, "the statement uses $" + std::to_string(n) + " but " +
                                              std::to_string(params.size()) +
                                              " parameters were given");
        const Value& v = params[n - 1];
        if (auto* s = std::get_if<std::string>(&v))
            sqlite3_bind_text64(stmt, i, s->data(), s->size(), SQLITE_STATIC, SQLITE_UTF8);
        else if (auto* x = std::get_if<std::int64_t>(&v))
            sqlite3_bind_int64(stmt, i, *x);
        else if (auto* d = std::get_if<double>(&v))
            sqlite3_bind_double(stmt, i, *d);
        else
            sqlite3_bind_null(stmt, i);
    }
}

Value column_value(sqlite3_stmt* stmt, int i) {
    switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER: return static_cast<std::int64_t>(sqlite3_column_int64(stmt, i));
        case SQLITE_FLOAT: return sqlite3_column_double(stmt, i);
        case SQLITE_NULL: return nullptr;
        default: {
            const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, i));
            return std::string(data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, i)));
        }
    }
}

}  // namespace

SqliteConnection::SqliteConnection(const std::string& database, const std::string& path,
                                   const SqliteSettings& settings)
    : database_(database) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw Error(ErrorCode::connection_failed, "cannot open " + path + ": " + why, database_,
                    {}, rc);
    }
    try {
        configure(settings, path);
    } catch (...) {
        sqlite3_close_v2(db_);
        throw;
    }
}

void SqliteConnection::configure(const SqliteSettings& settings, const std::string& path) {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(settings.busy_timeout_ms));
    execute_script("PRAGMA foreign_keys = ON");
    if (path != ":memory:") execute_script("PRAGMA journal_mode = " + settings.journal_mode);
    int rc = sqlite3_create_function_v2(db_, "regexp", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                        &regexes_, regexp_function, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, "create_function regexp");
    // Checked every 1000 VM instructions: a non-zero return interrupts the statement.
    sqlite3_progress_handler(
        db_, 1000,
        [](void* self) -> int {
            return Clock::now() > static_cast<SqliteConnection*>(self)->deadline_ ? 1 : 0;
        },
        this);
}

SqliteConnection::~SqliteConnection() { sqlite3_close_v2(db_); }

void SqliteConnection::fail(int rc, std::string_view sql) {
    ErrorCode code = classify(rc);
    if (code == ErrorCode::corrupt) broken_ = true;
    std::string message = (rc & 0xff) == SQLITE_INTERRUPT
                              ? std::string("statement cancelled: transaction time limit reached")
                              : std::string(sqlite3_errmsg(db_));
    throw Error(code, message + " (in: " + std::string(sql.substr(0, 200)) + ")", database_, {},
                rc);
}

Result SqliteConnection::execute(std::string_view sql, const Params& params) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    StatementPtr stmt(raw);
    if (rc != SQLITE_OK) fail(rc, sql);
    bind(raw, params);
    Result result;
    int columns = sqlite3_column_count(raw);
    for (int i = 0; i < columns; ++i) result.columns.emplace_back(sqlite3_column_name(raw, i));
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
        std::vector<Value> values;
        values.reserve(static_cast<std::size_t>(columns));
        for (int i = 0; i < columns; ++i) values.push_back(column_value(raw, i));
        result.rows.emplace_back(std::move(values));
    }
    if (rc != SQLITE_DONE) fail(rc, sql);
    result.affected_rows = sqlite3_changes64(db_);
    return result;
}

void SqliteConnection::execute_script(std::string_view sql) {
    std::string text(sql);
    char* message = nullptr;
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
    sqlite3_free(message);
    if (rc != SQLITE_OK) fail(rc, sql);
}

void SqliteConnection::begin_statement(BeginMode mode) {
    deadline_ = Clock::time_point::max();
    execute_script(mode == BeginMode::immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

void SqliteConnection::limit_transaction_time(std::chrono::milliseconds limit) {
    deadline_ = Clock::now() + limit;
}

bool SqliteConnection::ping() noexcept {
    if (broken_) return false;
    int rc = sqlite3_exec(db_, "SELECT 1", nullptr, nullptr, nullptr);
    if ((rc & 0xff) != SQLITE_OK && classify(rc) == ErrorCode::corrupt) broken_ = true;
    return !broken_;
}

bool SqliteConnection::in_transaction() const noexcept {
    return sqlite3_get_autocommit(db_) == 0;
}

std::string SqliteConnection::server_version() { return std::string("SQLite ") + sqlite3_libversion(); }

}  // namespace dbsup
