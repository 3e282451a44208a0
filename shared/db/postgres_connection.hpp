// A connection to PostgreSQL through libpqxx. Transactions are driven with plain
// BEGIN/COMMIT/ROLLBACK on a pqxx::nontransaction so that the pool, not libpqxx,
// owns their lifetime; libpqxx's silent reconnection is switched off so a dead
// connection is reported (and discarded) rather than replaced behind our back.
// BEGIN is deferred to the first statement (see begin_statement()).
// Only this unit's source includes <pqxx/pqxx>.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/db/connection.hpp"

struct pg_conn;  // libpq's PGconn

namespace dbsup {

/// How a connection treats the server (Engine builds it from the database's config).
struct PostgresSettings {
    /// Bounds the server-side prepared statements kept; 0: none (unnamed statements).
    std::size_t statement_cache_size = 100;
    /// Behind a transaction-pooling proxy: the statement timeout travels as
    /// SET LOCAL with every BEGIN, since the server connection is not ours.
    bool transaction_pooled = false;
    std::int64_t statement_timeout_ms = 0;
    /// Shared by every connection of one database: set (and reported, once)
    /// when the server lost a prepared statement of ours, the mark of an
    /// unconfigured transaction pooler; connections then stop caching.
    std::shared_ptr<std::atomic<bool>> pooler_detected;
};

class PostgresConnection final : public Connection {
public:
    /// @throws Error(connection_failed) naming the database, never the password.
    PostgresConnection(const std::string& database, const std::string& conninfo,
                       PostgresSettings settings = {});
    ~PostgresConnection() override;

    Result execute(std::string_view sql, const Params& params) override;
    void execute_script(std::string_view sql) override;
    bool ping() noexcept override;
    bool broken() const noexcept override { return broken_; }
    bool in_transaction() const noexcept override { return in_transaction_; }
    std::string server_version() override;
    Backend backend() const noexcept override { return Backend::postgresql; }
    StatementCacheCounts take_statement_counts() noexcept override {
        return statements_.take_counts();
    }
    /// COPY ... FROM STDIN.
    void insert_rows(const std::string& table, const std::vector<std::string>& columns,
                     const std::vector<Params>& rows) override;
    /// All in one round trip per 256 statements (libpq pipeline mode), a
    /// pending BEGIN with them.
    void execute_all(const std::vector<PendingStatement>& statements) override;
    void limit_transaction_time(std::chrono::milliseconds limit) override;
    void cancel() noexcept override;
    /// The server process serving this connection (pg_backend_pid()).
    int backend_pid() const noexcept;

protected:
    /// BEGIN is not sent on its own: it travels with the transaction's first
    /// statement (one round trip saved), and an empty transaction costs none.
    void begin_statement(BeginMode mode) override;

private:
    struct PipelineError {
        std::string message;
        std::string sqlstate;
        std::size_t index;  // of the failed statement in its chunk
    };
    static void send_in_pipeline(pg_conn* conn, const std::string& sql, const std::string& prepared,
                                 const Params& params);
    static std::optional<PipelineError> read_pipeline_results(pg_conn* conn);
    Result run(std::string_view sql, const Params& params);
    /// first: nothing else ran in the transaction, so a stale statement may
    /// restart it transparently.
    Result run_prepared(std::string_view sql, const std::vector<const char*>& params, bool first);
    /// The name of sql's prepared statement, preparing it on a cache miss.
    std::string prepared_name(std::string_view sql);
    /// The server lost (or already had) a statement of ours: a transaction
    /// pooler nobody told us about. Reports it once per database and stops
    /// caching, so the next statements run unnamed.
    void stop_caching_for_pooler() noexcept;
    /// BEGIN, with the statement timeout when the connection is pooled.
    std::vector<std::string> begin_statements() const;
    void send_begin();
    /// Deallocates statements that went stale or were evicted; called only
    /// outside a transaction, where DEALLOCATE cannot fail for an aborted one.
    void deallocate_stale();
    /// Turns the exception being handled into an Error (marking the connection
    /// broken when it is). Call only from a catch block.
    [[noreturn]] void translate_current_exception(std::string_view sql);
    void track_transaction(std::string_view sql) noexcept;

    std::string database_;
    struct Handles;  // the pqxx connection and its nontransaction
    std::unique_ptr<Handles> pq_;
    bool broken_ = false;
    bool in_transaction_ = false;
    bool begin_pending_ = false;
    bool first_in_transaction_ = false;  // no statement has run since BEGIN (run() clears it)
    PostgresSettings settings_;
    StatementCache<std::string> statements_;  // SQL text -> prepared statement name
    std::vector<std::string> stale_;          // names awaiting DEALLOCATE
};

}  // namespace dbsup
