// A transaction as a scope object on a Session: begins in the constructor,
// commit() is the only way to make its work stick, and the noexcept destructor
// rolls back if commit() was not called. A second commit(), or a commit() after
// rollback(), is a usage error.
//
// Thread-safety: belongs to the Session's thread.
#pragma once

#include "shared/db/session.hpp"

namespace dbsup {

class Transaction {
public:
    /// @throws Error(usage) if the session already has an open transaction.
    explicit Transaction(Session& session);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    Result execute(std::string_view sql, const Params& params = {});
    /// @throws Error(usage) if already ended; Error when COMMIT fails.
    void commit();
    void rollback() noexcept;
    bool active() const noexcept { return active_; }

private:
    Session& session_;
    bool active_ = true;
};

}  // namespace dbsup
