// SQLite through its C API. Statements are prepared, bound by $N name (so the
// same SQL text works on PostgreSQL), stepped and finalized by an RAII holder.
#include "shared/db/sqlite_connection.hpp"

#include <thread>

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>

#include "shared/errors.hpp"

namespace dbsup {
namespace {

// One use of a statement: afterwards a cached statement is reset for its next
// use (its bindings, which point into the caller's parameters, cleared), any
// other is finalized.
class StatementUse {
public:
    StatementUse(sqlite3_stmt* stmt, bool cached) noexcept : stmt_(stmt), cached_(cached) {}
    ~StatementUse() {
        if (!cached_) {
            sqlite3_finalize(stmt_);
            return;
        }
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    StatementUse(const StatementUse&) = delete;
    StatementUse& operator=(const StatementUse&) = delete;
    /// The statement left the cache: finalize it after this use.
    void uncache() noexcept { cached_ = false; }

private:
    sqlite3_stmt* stmt_;
    bool cached_;
};

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

// dbsup_snooze(seconds): a SQL task's "not yet" (worker/snooze_job.hpp). It
// fails the statement with the token the job runner reads; PostgreSQL has the
// same function in the queue's schema.
void snooze_function(sqlite3_context* ctx, int, sqlite3_value** argv) {
    const double seconds = sqlite3_value_double(argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || !(seconds >= 0))
        return sqlite3_result_error(ctx, "dbsup_snooze: seconds must be 0 or more", -1);
    const std::string token =
        "dbsup_snooze:" + std::to_string(static_cast<long long>(std::min(seconds, 1e9) * 1000));
    sqlite3_result_error(ctx, token.c_str(), -1);
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

void bind_value(sqlite3_stmt* stmt, int at, const Params& params, std::size_t n) {
    if (n > params.size())
        throw Error(ErrorCode::usage, "the statement uses $" + std::to_string(n) + " but " +
                                          std::to_string(params.size()) + " parameters were given");
    const Value& v = params[n - 1];
    if (auto* s = std::get_if<std::string>(&v))
        sqlite3_bind_text64(stmt, at, s->data(), s->size(), SQLITE_STATIC, SQLITE_UTF8);
    else if (auto* x = std::get_if<std::int64_t>(&v))
        sqlite3_bind_int64(stmt, at, *x);
    else if (auto* d = std::get_if<double>(&v))
        sqlite3_bind_double(stmt, at, *d);
    else
        sqlite3_bind_null(stmt, at);
}

void bind(sqlite3_stmt* stmt, const Params& params) {
    const int count = sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= count; ++i) bind_value(stmt, i, params, parameter_number(stmt, i));
}

// For a statement stepped once per row: its parameters' names are read once.
std::vector<std::size_t> parameter_numbers(sqlite3_stmt* stmt) {
    std::vector<std::size_t> numbers(static_cast<std::size_t>(sqlite3_bind_parameter_count(stmt)));
    for (std::size_t i = 0; i < numbers.size(); ++i)
        numbers[i] = parameter_number(stmt, static_cast<int>(i + 1));
    return numbers;
}

void bind(sqlite3_stmt* stmt, const Params& params, const std::vector<std::size_t>& numbers) {
    for (std::size_t i = 0; i < numbers.size(); ++i)
        bind_value(stmt, static_cast<int>(i + 1), params, numbers[i]);
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

// Steps stmt to the end. Column names are read after the first step: a statement
// SQLite re-prepared after a schema change may return other columns. rc gets
// the last step's result code (SQLITE_DONE when all went well).
Result collect_rows(sqlite3_stmt* stmt, int& rc) {
    Result result;
    rc = sqlite3_step(stmt);
    int columns = sqlite3_column_count(stmt);
    for (int i = 0; i < columns; ++i) result.columns.emplace_back(sqlite3_column_name(stmt, i));
    for (; rc == SQLITE_ROW; rc = sqlite3_step(stmt)) {
        std::vector<Value> values;
        values.reserve(static_cast<std::size_t>(columns));
        for (int i = 0; i < columns; ++i) values.push_back(column_value(stmt, i));
        result.rows.emplace_back(std::move(values));
    }
    return result;
}

}  // namespace

SqliteConnection::SqliteConnection(const std::string& database, const std::string& path,
                                   const SqliteSettings& settings,
                                   std::size_t statement_cache_size)
    : database_(database), statements_(statement_cache_size) {
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

// Connections opening a new file at once can meet in its switch to WAL, where
// SQLite answers busy at once: it does not call the busy handler when waiting
// could deadlock (each holding a shared lock). So the wait is done here.
void SqliteConnection::set_journal_mode(const SqliteSettings& settings) {
    const auto until = Clock::now() + std::chrono::milliseconds(settings.busy_timeout_ms);
    for (;;) {
        try {
            execute_script("PRAGMA journal_mode = " + settings.journal_mode);
            return;
        } catch (const Error& e) {
            if (e.code() != ErrorCode::busy || Clock::now() >= until) throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

void SqliteConnection::configure(const SqliteSettings& settings, const std::string& path) {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(settings.busy_timeout_ms));
    execute_script("PRAGMA foreign_keys = ON");
    if (path != ":memory:") set_journal_mode(settings);
    int rc = sqlite3_create_function_v2(db_, "regexp", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                        &regexes_, regexp_function, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, "create_function regexp");
    rc = sqlite3_create_function_v2(db_, "dbsup_snooze", 1, SQLITE_UTF8, nullptr, snooze_function,
                                    nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, "create_function dbsup_snooze");
    // Checked every 1000 VM instructions: a non-zero return interrupts the statement.
    sqlite3_progress_handler(
        db_, 1000,
        [](void* self) -> int {
            return Clock::now() > static_cast<SqliteConnection*>(self)->deadline_ ? 1 : 0;
        },
        this);
}

SqliteConnection::~SqliteConnection() {
    for (sqlite3_stmt* stmt : statements_.take_all()) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
}

void SqliteConnection::fail(int rc, std::string_view sql) {
    ErrorCode code = classify(rc);
    if (code == ErrorCode::corrupt) broken_ = true;
    // Interrupted by the progress handler at the deadline, or by cancel().
    const bool interrupted = (rc & 0xff) == SQLITE_INTERRUPT;
    std::string message = !interrupted ? std::string(sqlite3_errmsg(db_))
                          : Clock::now() > deadline_
                              ? std::string("statement cancelled: transaction time limit reached")
                              : std::string("statement cancelled");
    throw Error(code, message + " (in: " + std::string(sql.substr(0, 200)) + ")", database_, {},
                rc);
}

sqlite3_stmt* SqliteConnection::statement(std::string_view sql, bool cached) {
    if (cached)
        if (sqlite3_stmt** found = statements_.find(sql)) return *found;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        fail(rc, sql);
    }
    if (cached)
        if (auto evicted = statements_.insert(sql, stmt)) sqlite3_finalize(*evicted);
    return stmt;
}

Result SqliteConnection::execute(std::string_view sql, const Params& params) {
    const bool cached = !params.empty() && statements_.enabled();
    for (bool first_try = true;; first_try = false) {
        sqlite3_stmt* stmt = statement(sql, cached);
        StatementUse use(stmt, cached);
        bind(stmt, params);
        int rc = SQLITE_OK;
        Result result = collect_rows(stmt, rc);
        if ((rc & 0xff) == SQLITE_SCHEMA && cached && first_try) {
            // SQLite re-prepares a stale statement itself and gives up only after
            // many schema changes in a row; then prepare it afresh, once.
            statements_.erase(sql);
            use.uncache();
            continue;
        }
        if (rc != SQLITE_DONE) fail(rc, sql);
        result.affected_rows = sqlite3_changes64(db_);
        return result;
    }
}

void SqliteConnection::insert_rows(const std::string& table,
                                   const std::vector<std::string>& columns,
                                   const std::vector<Params>& rows) {
    std::string sql = "INSERT INTO " + table + " (";
    std::string values;
    for (std::size_t i = 0; i < columns.size(); ++i) {
        sql += (i ? ", " : "") + columns[i];
        values += (i ? ", $" : "$") + std::to_string(i + 1);
    }
    sql += ") VALUES (" + values + ")";
    // One statement for every row: looked up once, then bound and stepped per
    // row without execute()'s per-call result and cache bookkeeping.
    const bool cached = statements_.enabled();
    sqlite3_stmt* stmt = statement(sql, cached);
    StatementUse use(stmt, cached);
    const std::vector<std::size_t> numbers = parameter_numbers(stmt);
    for (const Params& row : rows) {
        bind(stmt, row, numbers);
        if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) fail(rc, sql);
        sqlite3_reset(stmt);
    }
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

void SqliteConnection::cancel() noexcept { sqlite3_interrupt(db_); }

}  // namespace dbsup
