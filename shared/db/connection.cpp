#include "shared/db/connection.hpp"

namespace dbsup {

void Connection::begin(BeginMode mode) { begin_statement(mode); }

void Connection::execute_all(const std::vector<PendingStatement>& statements) {
    for (const PendingStatement& statement : statements) execute(statement.sql, statement.params);
}

void Connection::commit() { execute("COMMIT", {}); }

void Connection::rollback() { execute("ROLLBACK", {}); }

bool Connection::reset() noexcept {
    if (broken()) return false;
    if (!in_transaction()) return true;
    try {
        rollback();
        return !broken();
    } catch (...) {
        return false;
    }
}

}  // namespace dbsup
