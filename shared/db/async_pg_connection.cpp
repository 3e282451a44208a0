#include "shared/db/async_pg_connection.hpp"

#include <libpq-fe.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>

#include "shared/db/cancel_requests.hpp"
#include "shared/db/postgres_values.hpp"

namespace dbsup {
namespace {

namespace asio = boost::asio;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;
using Wait = asio::posix::descriptor_base::wait_type;

void ignore_notice(void*, const char*) {}

std::string trimmed(const char* text) {
    std::string s = text ? text : "";
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return s;
}

Result convert(PGresult* r) {
    Result result;
    const int columns = PQnfields(r), rows = PQntuples(r);
    result.columns.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) result.columns.emplace_back(PQfname(r, c));
    result.rows.reserve(static_cast<std::size_t>(rows));
    for (int i = 0; i < rows; ++i) {
        std::vector<Value> values;
        values.reserve(static_cast<std::size_t>(columns));
        for (int c = 0; c < columns; ++c)
            values.push_back(PQgetisnull(r, i, c)
                                 ? Value(nullptr)
                                 : postgres_value(PQgetvalue(r, i, c),
                                                  static_cast<std::size_t>(PQgetlength(r, i, c)),
                                                  PQftype(r, c)));
        result.rows.emplace_back(std::move(values));
    }
    const char* affected = PQcmdTuples(r);
    std::from_chars(affected, affected + std::strlen(affected), result.affected_rows);
    return result;
}

}  // namespace

// One group of statements ended by a sync: what its waiter asked for and,
// once read, what came back. The views point into the waiter's frame and are
// read only until the group is sent (a waiter cancelled before that takes
// its request out of the queue).
struct AsyncPgConnection::Request {
    struct Item {
        std::string_view sql;
        const Params* params;
        bool rows;
    };
    struct Sent {
        Command command;
        std::string prepared_sql;  // a prepare's statement text, to forget it if it fails
    };
    explicit Request(const asio::any_io_executor& executor)
        : wake(executor, Clock::time_point::max()) {}

    std::vector<Item> items;
    std::vector<Sent> sent_commands;
    Result result;
    std::optional<Error> error;
    bool sent = false;
    bool synced = false;  // a sync follows its commands (else the batch's last group has it)
    bool done = false;
    bool drive = false;  // handed the driving: its waiter sends the next batch
    asio::steady_timer wake;  // cancelled to wake the waiter
};

AsyncPgConnection::AsyncPgConnection(const asio::any_io_executor& executor, std::string database,
                                     PostgresSettings settings, PGconn* conn)
    : database_(std::move(database)),
      settings_(std::move(settings)),
      conn_(conn),
      socket_(executor),
      timer_(executor),
      statements_(settings_.pooler_detected && *settings_.pooler_detected
                      ? 0
                      : settings_.statement_cache_size) {}

AsyncPgConnection::~AsyncPgConnection() {
    if (socket_.is_open()) (void)socket_.release();  // libpq's: PQfinish closes it
    PQfinish(conn_);
}

Awaitable<std::unique_ptr<AsyncConnection>> AsyncPgConnection::open(std::string database,
                                                                    std::string conninfo,
                                                                    PostgresSettings settings) {
    PGconn* conn = PQconnectStart(conninfo.c_str());
    if (!conn) throw Error(ErrorCode::connection_failed, "cannot connect: out of memory", database);
    std::unique_ptr<AsyncPgConnection> c(new AsyncPgConnection(
        co_await asio::this_coro::executor, std::move(database), std::move(settings), conn));
    c->timer_.expires_after(kConnectTimeout);
    auto outcome = co_await (c->connect() || c->timer_.async_wait(use_awaitable));
    if (outcome.index() == 1)
        throw Error(ErrorCode::connection_failed,
                    "cannot connect: no answer within " + std::to_string(kConnectTimeout.count()) +
                        " s",
                    c->database_);
    if (std::exception_ptr failed = std::get<0>(outcome)) std::rethrow_exception(failed);
    co_return c;
}

// Always registered afresh: while connecting, libpq closes a socket that
// failed (the next address, or without SSL) and may open the next one under
// the same number, which the reactor would not be watching.
void AsyncPgConnection::watch_socket() {
    const int fd = PQsocket(conn_);
    if (socket_.is_open()) (void)socket_.release();
    if (fd >= 0) socket_.assign(fd);
}

Awaitable<std::exception_ptr> AsyncPgConnection::connect() {
    try {
        co_await connect_steps();
    } catch (...) {
        co_return std::current_exception();
    }
    co_return nullptr;
}

Awaitable<void> AsyncPgConnection::connect_steps() {
    auto failed = [this] {
        std::string why = trimmed(PQerrorMessage(conn_));
        if (why.find("unsupported startup parameter") != std::string::npos)
            why += " (a pooler such as PgBouncer: set pooler = \"transaction\" in [databases." +
                   database_ + "])";
        return Error(ErrorCode::connection_failed, "cannot connect: " + why, database_);
    };
    if (PQstatus(conn_) == CONNECTION_BAD) throw failed();
    for (PostgresPollingStatusType poll = PGRES_POLLING_WRITING;;) {
        watch_socket();
        if (poll == PGRES_POLLING_READING)
            co_await socket_.async_wait(Wait::wait_read, use_awaitable);
        else if (poll == PGRES_POLLING_WRITING)
            co_await socket_.async_wait(Wait::wait_write, use_awaitable);
        poll = PQconnectPoll(conn_);
        if (poll == PGRES_POLLING_FAILED) throw failed();
        if (poll == PGRES_POLLING_OK) break;
    }
    watch_socket();
    PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
    if (PQsetnonblocking(conn_, 1) != 0 || PQenterPipelineMode(conn_) != 1) throw failed();
}

int AsyncPgConnection::backend_pid() const noexcept { return PQbackendPID(conn_); }

void AsyncPgConnection::throw_broken(const std::string& why) {
    broken_ = true;
    throw Error(ErrorCode::broken_connection, postgres_lost_message(why), database_);
}

Awaitable<Result> AsyncPgConnection::execute(std::string_view sql, const Params& params) {
    auto request = std::make_shared<Request>(socket_.get_executor());
    request->items.push_back({sql, &params, true});
    co_await submit(request);
    co_return std::move(request->result);
}

Awaitable<void> AsyncPgConnection::execute_all(const std::vector<PendingStatement>& statements) {
    if (statements.empty()) co_return;
    auto request = std::make_shared<Request>(socket_.get_executor());
    for (const PendingStatement& st : statements) request->items.push_back({st.sql, &st.params, false});
    co_await submit(request);
}

Awaitable<Result> AsyncPgConnection::execute_after(const std::vector<PendingStatement>& first,
                                                   std::string_view sql, const Params& params) {
    auto request = std::make_shared<Request>(socket_.get_executor());
    for (const PendingStatement& st : first) request->items.push_back({st.sql, &st.params, false});
    request->items.push_back({sql, &params, true});
    co_await submit(request);
    co_return std::move(request->result);
}

void AsyncPgConnection::begin(Connection::BeginMode, Clock::time_point deadline) {
    if (in_transaction())
        throw Error(ErrorCode::usage, "BEGIN inside a transaction", database_);
    begin_pending_ = true;
    deadline_ = deadline;
}

Awaitable<void> AsyncPgConnection::commit() {
    deadline_ = Clock::time_point::max();
    if (std::exchange(begin_pending_, false)) co_return;  // nothing was sent
    if (!in_transaction_) co_return;
    // COMMIT of a transaction an error aborted answers "ROLLBACK", no error:
    // the caller must hear that its work is gone.
    const bool aborted = PQtransactionStatus(conn_) == PQTRANS_INERROR;
    static const Params none;
    co_await execute(aborted ? "ROLLBACK" : "COMMIT", none);
    in_transaction_ = false;
    if (aborted)
        throw Error(ErrorCode::sql,
                    "COMMIT of a transaction an earlier statement's error aborted: rolled back",
                    database_);
}

Awaitable<void> AsyncPgConnection::commit_after(const std::vector<PendingStatement>& last) {
    if (last.empty() || !in_transaction()) {
        co_await commit();
        co_return;
    }
    deadline_ = Clock::time_point::max();
    static const Params none;
    std::vector<PendingStatement> all = last;
    all.push_back({last.front().label, "COMMIT", none});
    std::optional<Error> failed;
    try {
        co_await execute_all(all);
    } catch (const Error& e) {
        failed = e;
    }
    // A failure before the COMMIT aborted the transaction, and the COMMIT
    // then rolled it back (the server answers "ROLLBACK"): over either way.
    in_transaction_ = false;
    if (failed) throw *failed;
}

Awaitable<void> AsyncPgConnection::rollback() {
    deadline_ = Clock::time_point::max();
    if (std::exchange(begin_pending_, false) || !in_transaction_ || broken_) co_return;
    static const Params none;
    co_await execute("ROLLBACK", none);
    in_transaction_ = false;
}

Awaitable<bool> AsyncPgConnection::ping() {
    try {
        static const Params none;
        co_await execute("SELECT 1", none);
    } catch (...) {
        broken_ = true;
    }
    co_return !broken_;
}

Awaitable<void> AsyncPgConnection::submit(const std::shared_ptr<Request>& request) {
    if (broken_) throw Error(ErrorCode::broken_connection, "the connection is broken", database_);
    pending_.push_back(request);
    if (!driving_) {
        driving_ = true;
        co_await drive();
    }
    while (!request->done) {
        if (std::exchange(request->drive, false)) {
            co_await drive();
            continue;
        }
        boost::system::error_code ec;
        co_await request->wake.async_wait(asio::redirect_error(use_awaitable, ec));
        if (request->done || request->drive) continue;
        // Cancelled from outside while waiting its turn.
        if (!request->sent) std::erase(pending_, request);
        throw boost::system::system_error(asio::error::operation_aborted);
    }
    if (request->error) throw *request->error;
}

Awaitable<void> AsyncPgConnection::drive() {
    std::vector<std::shared_ptr<Request>> batch;
    while (!pending_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
    }
    try {
        for (std::size_t i = 0; i < batch.size(); ++i) send(*batch[i], i + 1 == batch.size());
        co_await flush();
        for (auto& request : batch) {
            co_await read(*request);
            request->done = true;
            request->wake.cancel();
        }
    } catch (const Error& e) {
        fail_all(e, batch);
        throw;
    } catch (const std::exception& e) {  // cancelled mid-flight: the stream is out of step
        fail_all(Error(ErrorCode::broken_connection,
                       std::string("a statement was abandoned on the wire (") + e.what() +
                           "): the connection is discarded",
                       database_),
                 batch);
        throw;
    }
    if (std::exchange(cancel_sent_, false)) broken_ = true;  // see the header: never reused
    if (!pending_.empty() && !broken_) {
        pending_.front()->drive = true;
        pending_.front()->wake.cancel();
        co_return;
    }
    driving_ = false;
    if (!pending_.empty()) {
        fail_all(Error(ErrorCode::broken_connection, "the connection is broken", database_), batch);
    }
}

void AsyncPgConnection::fail_all(const Error& error,
                                 std::vector<std::shared_ptr<Request>>& batch) noexcept {
    broken_ = true;
    driving_ = false;
    for (auto& request : batch) {
        if (request->done) continue;
        if (!request->error) request->error = error;
        request->done = true;
        request->wake.cancel();
    }
    for (auto& request : pending_) {
        request->error = error;
        request->done = true;
        request->wake.cancel();
    }
    pending_.clear();
}

void AsyncPgConnection::send_other(Request& request, const std::string& sql) {
    if (PQsendQueryParams(conn_, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) != 1)
        throw_broken(PQerrorMessage(conn_));
    request.sent_commands.push_back({Command::other, {}});
}

void AsyncPgConnection::send_statement(Request& request, std::string_view sql,
                                       const Params& params, bool rows) {
    const PostgresParams texts(params);
    const int n = static_cast<int>(texts.pointers.size());
    const char* const* values = texts.pointers.data();
    int sent;
    if (!statements_.enabled()) {
        sent = PQsendQueryParams(conn_, std::string(sql).c_str(), n, nullptr, values, nullptr,
                                 nullptr, 0);
    } else {
        const std::string* cached = statements_.find(sql);
        std::string name = cached ? *cached : postgres_statement_name(sql);
        if (!cached) {
            // Evicted but not yet deallocated: the server still has it.
            const bool on_server = std::erase(stale_, name) > 0;
            if (!on_server) {
                if (PQsendPrepare(conn_, name.c_str(), std::string(sql).c_str(), 0, nullptr) != 1)
                    throw_broken(PQerrorMessage(conn_));
                request.sent_commands.push_back({Command::prepare, std::string(sql)});
            }
            if (auto evicted = statements_.insert(sql, name)) stale_.push_back(std::move(*evicted));
        }
        sent = PQsendQueryPrepared(conn_, name.c_str(), n, values, nullptr, nullptr, 0);
    }
    if (sent != 1) throw_broken(PQerrorMessage(conn_));
    request.sent_commands.push_back({rows ? Command::statement_rows : Command::statement, {}});
}

void AsyncPgConnection::send(Request& request, bool last) {
    if (!in_transaction_ && !begin_pending_)
        for (const std::string& name : std::exchange(stale_, {}))
            send_other(request, "DEALLOCATE " + name);
    if (std::exchange(begin_pending_, false)) {
        send_other(request, "BEGIN");
        if (settings_.transaction_pooled && settings_.statement_timeout_ms > 0)
            send_other(request, "SET LOCAL statement_timeout = " +
                                    std::to_string(settings_.statement_timeout_ms));
        in_transaction_ = true;
    }
    bool ends_transaction = false;
    for (const Request::Item& item : request.items) {
        send_statement(request, item.sql, *item.params, item.rows);
        const std::string word = first_sql_word(item.sql);
        ends_transaction = ends_transaction || word == "COMMIT" || word == "ROLLBACK" ||
                           word == "END" || word == "ABORT";
    }
    if (ends_transaction) in_transaction_ = false;
    // Inside a transaction the groups of a batch share one sync (the server
    // answers each sync with its own flush): an error aborts the transaction
    // anyway. Outside one, each group is its own implicit transaction.
    if (last || !in_transaction_) {
        if (PQpipelineSync(conn_) != 1) throw_broken(PQerrorMessage(conn_));
        request.synced = true;
    }
    request.sent = true;
}

Awaitable<void> AsyncPgConnection::flush() {
    for (;;) {
        const int left = PQflush(conn_);
        if (left == 0) co_return;
        if (left < 0) throw_broken(PQerrorMessage(conn_));
        // Read meanwhile: a server blocked writing to us reads nothing more.
        co_await (socket_.async_wait(Wait::wait_write, use_awaitable) ||
                  socket_.async_wait(Wait::wait_read, use_awaitable));
        if (PQconsumeInput(conn_) != 1) throw_broken(PQerrorMessage(conn_));
    }
}

Awaitable<void> AsyncPgConnection::wait_readable() {
    if (deadline_ == Clock::time_point::max()) {
        co_await socket_.async_wait(Wait::wait_read, use_awaitable);
        co_return;
    }
    const Clock::time_point limit = cancel_sent_ ? cancel_sent_at_ + kCancelGrace : deadline_;
    if (Clock::now() < limit) {
        timer_.expires_at(limit);
        auto first = co_await (socket_.async_wait(Wait::wait_read, use_awaitable) ||
                               timer_.async_wait(use_awaitable));
        if (first.index() == 0) co_return;
    }
    if (cancel_sent_) throw_broken("no answer within " + std::to_string(kCancelGrace.count()) +
                                   " s of cancelling a statement");
    cancel_on_server();
}

bool AsyncPgConnection::cancel() noexcept {
    if (!driving_) return false;  // nothing on the wire
    if (cancel_sent_) return true;
    cancel_asked_ = true;
    cancel_on_server();
    return true;
}

void AsyncPgConnection::cancel_on_server() noexcept {
    cancel_sent_ = true;
    cancel_sent_at_ = Clock::now();
    PGcancel* cancel = PQgetCancel(conn_);
    if (!cancel) return;
    try {
        // PQcancel opens a connection and waits for it (libpq 15): never on the event loop.
        asio::use_service<CancelRequests>(asio::query(socket_.get_executor(), asio::execution::context))
            .send([cancel] {
                char why[256];
                PQcancel(cancel, why, sizeof why);
                PQfreeCancel(cancel);
            });
    } catch (...) {
        PQfreeCancel(cancel);
    }
}

Awaitable<PGresult*> AsyncPgConnection::next_result() {
    while (PQisBusy(conn_)) {
        co_await wait_readable();
        if (PQconsumeInput(conn_) != 1) throw_broken(PQerrorMessage(conn_));
    }
    co_return PQgetResult(conn_);
}

Awaitable<void> AsyncPgConnection::read(Request& request) {
    for (const Request::Sent& sent : request.sent_commands) {
        while (PGresult* result = co_await next_result()) {
            take(request, sent.command, sent.prepared_sql, result);
            PQclear(result);
        }
    }
    if (request.synced) {
        PGresult* sync = co_await next_result();
        const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
        PQclear(sync);
        if (!synced) throw_broken("the pipeline went out of step: " + trimmed(PQerrorMessage(conn_)));
    }
    if (request.error && request.error->code() == ErrorCode::broken_connection) broken_ = true;
    if (PQstatus(conn_) == CONNECTION_BAD) broken_ = true;
}

void AsyncPgConnection::take(Request& request, Command command, const std::string& prepared_sql,
                             PGresult* result) {
    const ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_FATAL_ERROR || status == PGRES_PIPELINE_ABORTED) {
        if (command == Command::prepare) statements_.erase(prepared_sql);  // the server has none
        if (request.error) return;
        if (status == PGRES_PIPELINE_ABORTED) {  // an earlier group's error aborted the transaction
            request.error.emplace(ErrorCode::sql,
                                  "not run: an earlier statement of the transaction failed",
                                  database_, "25P02");
            return;
        }
        const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        const std::string sqlstate = state ? state : "";
        std::string message = trimmed(PQresultErrorMessage(result));
        ErrorCode code = postgres_error_code(sqlstate, message);
        if (postgres_lost_statement(sqlstate, message)) {
            stale_.clear();  // a DEALLOCATE would reach some other client's server connection
            statements_.disable();
            if (settings_.pooler_detected) settings_.pooler_detected->store(true);
            message += " (a transaction pooler such as PgBouncer is in between: set pooler = "
                       "\"transaction\" in [databases." + database_ + "])";
        }
        if (code == ErrorCode::broken_connection) message = postgres_lost_message(message);
        if (cancel_sent_ && sqlstate == "57014")
            message = cancel_asked_
                          ? "the statement was cancelled on the server"
                          : "the statement was cancelled on the server at the transaction's deadline";
        request.error.emplace(code, message, database_, sqlstate);
        return;
    }
    if (command == Command::statement_rows &&
        (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK))
        request.result = convert(result);
}

}  // namespace dbsup
