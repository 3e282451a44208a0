// A connection to PostgreSQL through libpqxx. Transactions are driven with plain
// BEGIN/COMMIT/ROLLBACK on a pqxx::nontransaction so that the pool, not libpqxx,
// owns their lifetime; libpqxx's silent reconnection is switched off so a dead
// connection is reported (and discarded) rather than replaced behind our back.
// BEGIN is deferred to the first statement (see begin_statement()).
// Only this unit's source includes <pqxx/pqxx>.
#pragma once

#include <memory>
#include <string>

#include "shared/db/connection.hpp"

namespace dbsup {

class PostgresConnection final : public Connection {
public:
    /// @throws Error(connection_failed) naming the database, never the password.
    PostgresConnection(const std::string& database, const std::string& conninfo);
    ~PostgresConnection() override;

    Result execute(std::string_view sql, const Params& params) override;
    void execute_script(std::string_view sql) override;
    bool ping() noexcept override;
    bool broken() const noexcept override { return broken_; }
    bool in_transaction() const noexcept override { return in_transaction_; }
    std::string server_version() override;
    Backend backend() const noexcept override { return Backend::postgresql; }
    void limit_transaction_time(std::chrono::milliseconds limit) override;
    /// The server process serving this connection (pg_backend_pid()).
    int backend_pid() const noexcept;

protected:
    /// BEGIN is not sent on its own: it travels with the transaction's first
    /// statement (one round trip saved), and an empty transaction costs none.
    void begin_statement(BeginMode mode) override;

private:
    Result run(std::string_view sql, const Params& params);
    void track_transaction(std::string_view sql) noexcept;

    std::string database_;
    struct Handles;  // the pqxx connection and its nontransaction
    std::unique_ptr<Handles> pq_;
    bool broken_ = false;
    bool in_transaction_ = false;
    bool begin_pending_ = false;
};

}  // namespace dbsup
