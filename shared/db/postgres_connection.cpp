// libpqxx 6.4 on Debian 12. Errors are translated by SQLSTATE class at this
// boundary (STYLE point 11); parameters travel as text with real NULLs.
#include "shared/db/postgres_connection.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <cctype>
#include <cstdio>
#include <charconv>
#include <string_view>
#include <utility>

#include "shared/db/postgres_values.hpp"
#include "shared/errors.hpp"

namespace dbsup {
namespace {

// libpqxx 6.4 keeps its PGconn private, and pipeline mode (libpq 14) is not in
// its API. An explicit instantiation may name a private member (C++20
// [temp.spec.general]/6), which hands the member pointer to get() below. Only
// execute_all() uses the handle, and it leaves the connection idle, the state
// libpqxx expects.
struct PgconnMember {
    using type = pqxx::internal::pq::PGconn* pqxx::connection_base::*;
    friend type get(PgconnMember);
};
template <class Tag, typename Tag::type Member>
struct Expose {
    friend typename Tag::type get(Tag) { return Member; }
};
template struct Expose<PgconnMember, &pqxx::connection_base::m_conn>;

PGconn* raw_connection(pqxx::connection_base& connection) {
    return connection.*get(PgconnMember{});
}

bool stale_plan(const pqxx::sql_error& e) { return postgres_stale_plan(e.sqlstate(), e.what()); }

bool lost_statement(const pqxx::sql_error& e) {
    return postgres_lost_statement(e.sqlstate(), e.what());
}

ErrorCode classify(const pqxx::sql_error& e) { return postgres_error_code(e.sqlstate(), e.what()); }

Value field_value(const pqxx::field& field) {
    if (field.is_null()) return nullptr;
    return postgres_value(field.c_str(), field.size(), field.type());
}

Result convert(const pqxx::result& r) {
    Result result;
    for (pqxx::row::size_type c = 0; c < r.columns(); ++c) result.columns.emplace_back(r.column_name(c));
    result.rows.reserve(r.size());
    for (const auto& row : r) {
        std::vector<Value> values;
        values.reserve(row.size());
        for (const auto& field : row) values.push_back(field_value(field));
        result.rows.emplace_back(std::move(values));
    }
    result.affected_rows = r.affected_rows();
    return result;
}

constexpr std::size_t kCopyChunk = 64 * 1024;

// One field of COPY's text format: \N for NULL, backslash escapes otherwise.
// Numbers need none, and most text none either: appended whole.
void append_copy_field(std::string& line, const Value& v) {
    if (std::holds_alternative<std::nullptr_t>(v)) {
        line += "\\N";
        return;
    }
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        char buffer[24];
        line.append(buffer, std::to_chars(buffer, buffer + sizeof buffer, *i).ptr);
        return;
    }
    const auto* text = std::get_if<std::string>(&v);
    const std::string number = text ? std::string() : value_text(v);  // a double
    std::string_view rest = text ? std::string_view(*text) : std::string_view(number);
    for (std::size_t special; (special = rest.find_first_of("\\\t\n\r")) != rest.npos;) {
        line.append(rest.substr(0, special));
        const char c = rest[special];
        line += '\\';
        line += c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
        rest.remove_prefix(special + 1);
    }
    line.append(rest);
}

}  // namespace

struct PostgresConnection::Handles {
    explicit Handles(const std::string& conninfo) : connection(conninfo) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        connection.inhibit_reactivation(true);
#pragma GCC diagnostic pop
        cancel = PQgetCancel(raw_connection(connection));
    }
    ~Handles() { PQfreeCancel(cancel); }
    Handles(const Handles&) = delete;
    Handles& operator=(const Handles&) = delete;
    pqxx::connection connection;
    pqxx::nontransaction work{connection};  // declared after connection: destroyed first
    PGcancel* cancel = nullptr;  // made here, on the owner's thread; PQcancel() is thread-safe
};

PostgresConnection::PostgresConnection(const std::string& database, const std::string& conninfo,
                                       PostgresSettings settings)
    : database_(database),
      settings_(std::move(settings)),
      statements_(settings_.pooler_detected && *settings_.pooler_detected
                      ? 0
                      : settings_.statement_cache_size) {
    try {
        pq_ = std::make_unique<Handles>(conninfo);
    } catch (const std::exception& e) {
        // libpq's message names host and port, never the password.
        std::string why = e.what();
        while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
        if (why.find("unsupported startup parameter") != std::string::npos)
            why += " (a pooler such as PgBouncer: set pooler = \"transaction\" in [databases." +
                   database_ + "])";
        throw Error(ErrorCode::connection_failed, "cannot connect: " + why, database_);
    }
}

PostgresConnection::~PostgresConnection() = default;

void PostgresConnection::cancel() noexcept {
    // Blocks for a connection to the server (libpq 15): the caller's thread, never the owner's.
    char why[256];
    if (pq_ && pq_->cancel) PQcancel(pq_->cancel, why, sizeof why);
}

void PostgresConnection::track_transaction(std::string_view sql) noexcept {
    std::string word = first_sql_word(sql);
    if (word == "BEGIN" || word == "START") in_transaction_ = true;
    if (word == "COMMIT" || word == "ROLLBACK" || word == "END" || word == "ABORT")
        in_transaction_ = false;
}

void PostgresConnection::limit_transaction_time(std::chrono::milliseconds limit) {
    execute("SET LOCAL statement_timeout = " + std::to_string(std::max<long>(1, limit.count())),
            {});
}

void PostgresConnection::begin_statement(BeginMode) {
    if (in_transaction_) throw Error(ErrorCode::usage, "BEGIN inside a transaction", database_);
    deallocate_stale();
    begin_pending_ = true;
    in_transaction_ = true;
    first_in_transaction_ = true;
}

Result PostgresConnection::run(std::string_view sql, const Params& params) {
    const bool first = std::exchange(first_in_transaction_, false);
    if (begin_pending_) {
        begin_pending_ = false;
        std::string word = first_sql_word(sql);
        if (word == "COMMIT" || word == "ROLLBACK") return Result{};  // nothing was sent
        // The simple-query protocol takes several statements in one round trip;
        // a parameterised statement needs the extended protocol, so BEGIN goes first.
        if (params.empty()) {
            std::string text;
            for (const std::string& begin : begin_statements()) text += begin + "; ";
            return convert(pq_->work.exec(text + std::string(sql)));
        }
        send_begin();
    }
    if (params.empty()) return convert(pq_->work.exec(std::string(sql)));
    const PostgresParams texts(params);
    const std::vector<const char*>& pointers = texts.pointers;
    if (statements_.enabled()) return run_prepared(sql, pointers, first);
    return convert(
        pq_->work.exec_params(std::string(sql), pqxx::prepare::make_dynamic_params(pointers)));
}

std::vector<std::string> PostgresConnection::begin_statements() const {
    if (!settings_.transaction_pooled || settings_.statement_timeout_ms <= 0) return {"BEGIN"};
    return {"BEGIN",
            "SET LOCAL statement_timeout = " + std::to_string(settings_.statement_timeout_ms)};
}

void PostgresConnection::send_begin() {
    std::string text;
    for (const std::string& begin : begin_statements()) text += (text.empty() ? "" : "; ") + begin;
    pq_->work.exec(text);
}

void PostgresConnection::stop_caching_for_pooler() noexcept {
    statements_.disable();
    stale_.clear();  // a DEALLOCATE would reach some other client's server connection
    if (settings_.pooler_detected && !settings_.pooler_detected->exchange(true))
        spdlog::error("database '{}': the server lost a prepared statement of ours between two "
                      "transactions, so a transaction-pooling proxy (PgBouncer?) stands between "
                      "us: set pooler = \"transaction\" in [databases.{}]. Until then this "
                      "process prepares nothing (slower)",
                      database_, database_);
}

std::string PostgresConnection::prepared_name(std::string_view sql) {
    if (const std::string* name = statements_.find(sql)) return *name;
    std::string name = postgres_statement_name(sql);
    // Evicted but not yet deallocated: the server still has it, under the name
    // its text gives, so it is taken back rather than deallocated under us.
    std::erase(stale_, name);
    pq_->connection.prepare(name, std::string(sql));
    try {
        pq_->connection.prepare_now(name);
    } catch (...) {
        pq_->connection.unprepare(name);  // never registered: forgets it without a round trip
        throw;
    }
    if (auto evicted = statements_.insert(sql, name)) stale_.push_back(std::move(*evicted));
    return name;
}

Result PostgresConnection::run_prepared(std::string_view sql,
                                        const std::vector<const char*>& params, bool first) {
    try {
        return convert(pq_->work.exec_prepared(prepared_name(sql),
                                               pqxx::prepare::make_dynamic_params(params)));
    } catch (const pqxx::sql_error& e) {
        if (lost_statement(e))
            stop_caching_for_pooler();
        else if (!stale_plan(e))
            throw;
        else if (auto name = statements_.erase(sql))
            stale_.push_back(std::move(*name));
        // The error aborted the transaction. When nothing else ran in it, nothing
        // is lost by starting it again with the statement prepared afresh (or
        // unnamed); otherwise the caller sees a retryable error (stale_statement).
        if (in_transaction_ && !first) throw;
        if (in_transaction_) pq_->work.exec("ROLLBACK");
        deallocate_stale();
        if (in_transaction_) send_begin();
        const auto dynamic = pqxx::prepare::make_dynamic_params(params);
        if (!statements_.enabled()) return convert(pq_->work.exec_params(std::string(sql), dynamic));
        return convert(pq_->work.exec_prepared(prepared_name(sql), dynamic));
    }
}

void PostgresConnection::deallocate_stale() {
    try {
        while (!stale_.empty()) {
            // Taken out first: a name whose DEALLOCATE failed is not tried forever.
            const std::string name = std::move(stale_.back());
            stale_.pop_back();
            pq_->connection.unprepare(name);
        }
    } catch (...) {
        translate_current_exception("DEALLOCATE");
    }
}

void PostgresConnection::insert_rows(const std::string& table,
                                     const std::vector<std::string>& columns,
                                     const std::vector<Params>& rows) {
    try {
        first_in_transaction_ = false;
        if (std::exchange(begin_pending_, false)) send_begin();  // COPY goes alone
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        // libpqxx 6.4's stream_to takes only tuples; tablewriter takes the lines
        // this unit escapes itself. The escaping is byte-wise, which is safe in
        // every server encoding (the client encoding here is the server's); the
        // deprecation warns of client-only encodings such as SJIS.
        pqxx::tablewriter copy(pq_->work, table, columns.begin(), columns.end());
#pragma GCC diagnostic pop
        // Lines go to libpq some 64 KiB at a time, not one call (and copy) each.
        std::string lines;
        for (std::size_t r = 0; r < rows.size(); ++r) {
            if (!lines.empty()) lines += '\n';
            for (std::size_t i = 0; i < rows[r].size(); ++i) {
                if (i) lines += '\t';
                append_copy_field(lines, rows[r][i]);
            }
            if (lines.size() >= kCopyChunk || r + 1 == rows.size()) {
                copy.write_raw_line(lines);  // adds the last newline
                lines.clear();
            }
        }
        copy.complete();
    } catch (...) {
        translate_current_exception("COPY");
    }
}

// The statements are prepared first (libpqxx can run nothing while the
// connection is in pipeline mode), then sent in chunks of kPipelineChunk, each
// ended by a sync and read back before the next: the results stay far below
// the socket buffers, so the blocking sends never wait on a server that waits
// on us.
void PostgresConnection::execute_all(const std::vector<PendingStatement>& statements) {
    if (statements.empty()) return;
    if (broken_) throw Error(ErrorCode::broken_connection, "the connection is broken", database_);
    std::string_view failed_sql = statements.front().sql;
    try {
        first_in_transaction_ = false;
        std::vector<std::string> names;
        names.reserve(statements.size());
        for (const PendingStatement& st : statements)
            names.push_back(statements_.enabled() ? prepared_name(st.sql) : std::string());
        PGconn* conn = raw_connection(pq_->connection);
        if (PQenterPipelineMode(conn) != 1)
            throw pqxx::failure(std::string("cannot enter pipeline mode: ") + PQerrorMessage(conn));
        constexpr std::size_t kPipelineChunk = 256;
        for (std::size_t start = 0; start < statements.size(); start += kPipelineChunk) {
            const std::size_t end = std::min(statements.size(), start + kPipelineChunk);
            const std::vector<std::string> begins =
                std::exchange(begin_pending_, false) ? begin_statements()
                                                     : std::vector<std::string>();
            for (const std::string& begin : begins) send_in_pipeline(conn, begin, "", {});
            for (std::size_t i = start; i < end; ++i)
                send_in_pipeline(conn, std::string(statements[i].sql), names[i], statements[i].params);
            if (PQpipelineSync(conn) != 1) throw pqxx::broken_connection(PQerrorMessage(conn));
            if (auto error = read_pipeline_results(conn)) {
                PQexitPipelineMode(conn);
                const std::size_t skip = std::min(begins.size(), error->index);
                failed_sql = statements[std::min(end - 1, start + error->index - skip)].sql;
                throw pqxx::sql_error(error->message, std::string(failed_sql),
                                      error->sqlstate.c_str());
            }
        }
        if (PQexitPipelineMode(conn) != 1)
            throw pqxx::broken_connection(std::string("cannot leave pipeline mode: ") +
                                          PQerrorMessage(conn));
    } catch (...) {
        translate_current_exception(failed_sql);
    }
}

void PostgresConnection::send_in_pipeline(PGconn* conn, const std::string& sql,
                                          const std::string& prepared, const Params& params) {
    const PostgresParams texts(params);
    const char* const* values = texts.pointers.data();
    const int n = static_cast<int>(texts.pointers.size());
    const int sent =
        prepared.empty()
            ? PQsendQueryParams(conn, sql.c_str(), n, nullptr, values, nullptr, nullptr, 0)
            : PQsendQueryPrepared(conn, prepared.c_str(), n, values, nullptr, nullptr, 0);
    if (sent != 1) throw pqxx::broken_connection(PQerrorMessage(conn));
}

// Reads up to the sync. A statement after a failed one is skipped by the server
// (PGRES_PIPELINE_ABORTED); the first failure is what the caller sees. The
// index counts the chunk's statements, a BEGIN sent with them first included.
std::optional<PostgresConnection::PipelineError> PostgresConnection::read_pipeline_results(
    PGconn* conn) {
    std::optional<PipelineError> error;
    std::size_t index = 0;
    for (;;) {
        PGresult* r = PQgetResult(conn);
        if (!r) {  // between two statements' results
            if (PQstatus(conn) == CONNECTION_BAD) throw pqxx::broken_connection(PQerrorMessage(conn));
            continue;
        }
        const ExecStatusType status = PQresultStatus(r);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return error;
        }
        if (status == PGRES_FATAL_ERROR && !error) {
            const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            error = PipelineError{PQresultErrorMessage(r), state ? state : "", index};
        }
        ++index;
        PQclear(r);
        if (PQstatus(conn) == CONNECTION_BAD) throw pqxx::broken_connection(PQerrorMessage(conn));
    }
}

Result PostgresConnection::execute(std::string_view sql, const Params& params) {
    if (broken_) throw Error(ErrorCode::broken_connection, "the connection is broken", database_);
    try {
        Result result = run(sql, params);
        track_transaction(sql);
        return result;
    } catch (...) {
        translate_current_exception(sql);
    }
}


void PostgresConnection::translate_current_exception(std::string_view sql) {
    try {
        throw;
    } catch (const pqxx::broken_connection& e) {
        broken_ = true;
        throw Error(ErrorCode::broken_connection, postgres_lost_message(e.what()), database_);
    } catch (const pqxx::sql_error& e) {
        if (lost_statement(e)) stop_caching_for_pooler();
        ErrorCode code = classify(e);
        if (code == ErrorCode::broken_connection || !pq_->connection.is_open()) broken_ = true;
        // A failed COMMIT ends the transaction too; a failed statement leaves it aborted.
        if (first_sql_word(sql) == "COMMIT") in_transaction_ = false;
        std::string message = broken_ ? postgres_lost_message(e.what()) : e.what();
        if (lost_statement(e))
            message += " (a transaction pooler such as PgBouncer is in between: set pooler = "
                       "\"transaction\" in [databases." + database_ + "])";
        throw Error(broken_ ? ErrorCode::broken_connection : code, message, database_,
                    e.sqlstate());
    } catch (const pqxx::serialization_failure& e) {
        // libpqxx 6 derives these from failure, not sql_error: no SQLSTATE on them.
        throw Error(ErrorCode::serialization_failure, e.what(), database_, "40001");
    } catch (const pqxx::deadlock_detected& e) {
        throw Error(ErrorCode::deadlock, e.what(), database_, "40P01");
    } catch (const pqxx::failure& e) {
        if (!pq_->connection.is_open()) broken_ = true;
        throw Error(broken_ ? ErrorCode::broken_connection : ErrorCode::sql,
                    broken_ ? postgres_lost_message(e.what()) : e.what(), database_);
    }
}

void PostgresConnection::execute_script(std::string_view sql) { execute(sql, {}); }

bool PostgresConnection::ping() noexcept {
    try {
        execute("SELECT 1", {});
    } catch (...) {
        broken_ = true;
    }
    return !broken_;
}

std::string PostgresConnection::server_version() {
    return "PostgreSQL " + execute("SHOW server_version", {}).scalar<std::string>();
}

int PostgresConnection::backend_pid() const noexcept { return pq_->connection.backendpid(); }

}  // namespace dbsup
