#include "shared/db/transaction.hpp"

#include "shared/errors.hpp"

namespace dbsup {

Transaction::Transaction(Session& session) : session_(session) { session_.begin(); }

Transaction::~Transaction() {
    if (active_) session_.rollback();
}

Result Transaction::execute(std::string_view sql, const Params& params) {
    if (!active_) throw Error(ErrorCode::usage, "the transaction has already ended");
    return session_.execute(sql, params);
}

void Transaction::commit() {
    if (!active_) throw Error(ErrorCode::usage, "commit() on a transaction that has ended");
    active_ = false;
    session_.commit();
}

void Transaction::rollback() noexcept {
    if (!active_) return;
    active_ = false;
    session_.rollback();
}

}  // namespace dbsup
