#include "shared/db/session.hpp"

#include "shared/errors.hpp"
#include "shared/monitoring/track_query.hpp"

namespace dbsup {
namespace {

// Unlabelled statements are counted by kind; the labels are built once.
const QueryLabel& label_of(std::string_view sql) {
    static const QueryLabel kinds[] = {{"select", "-", "sql"}, {"insert", "-", "sql"},
                                       {"update", "-", "sql"}, {"delete", "-", "sql"},
                                       {"other", "-", "sql"}};
    static constexpr std::string_view words[] = {"select", "insert", "update", "delete"};
    std::size_t start = sql.find_first_not_of(" \t\r\n(");
    std::string_view head = start == std::string_view::npos ? "" : sql.substr(start, 6);
    for (std::size_t i = 0; i < std::size(words); ++i) {
        bool same = head.size() == 6;
        for (std::size_t c = 0; same && c < 6; ++c)
            same = (head[c] | 0x20) == words[i][c];
        if (same) return kinds[i];
    }
    return kinds[std::size(words)];
}

}  // namespace

Session::Session(std::shared_ptr<ConnectionPool> pool, std::string holder,
                 QueryObserver* observer)
    : pool_(std::move(pool)), holder_(std::move(holder)), observer_(observer) {}

Session::~Session() { rollback(); }

void Session::begin(Connection::BeginMode mode) {
    if (lease_)
        throw Error(ErrorCode::usage, "a transaction is already open in this session",
                    pool_->options().name);
    ConnectionLease lease = pool_->acquire(holder_);
    lease->begin(mode);  // on failure the lease goes back (and is discarded if broken)
    lease_ = std::move(lease);
    if (observer_) began_at_ = std::chrono::steady_clock::now();
}

Connection& Session::connection() {
    if (!lease_) begin();
    return *lease_;
}

Result Session::execute(std::string_view sql, const Params& params) {
    return execute(label_of(sql), sql, params);
}

Result Session::execute(const QueryLabel& label, std::string_view sql, const Params& params) {
    Connection& c = connection();  // a checkout is not part of the query's time
    try {
        Result r = track_query(observer_, label, sql, [&] { return c.execute(sql, params); });
        pool_->breaker().record_success();
        return r;
    } catch (const Error& e) {
        pool_->breaker().record(e);
        throw;
    }
}

void Session::execute_script(std::string_view sql) { connection().execute_script(sql); }

void Session::commit() {
    if (!lease_) return;
    ConnectionLease lease = std::move(lease_);
    try {
        lease->commit();  // if it throws, the lease's destructor rolls back or discards
    } catch (...) {
        end_transaction(false);
        throw;
    }
    end_transaction(true);
}

void Session::rollback() noexcept {
    if (!lease_) return;
    // Giving the lease back rolls back an open transaction, or discards a
    // connection on which even ROLLBACK failed.
    lease_.release();
    end_transaction(false);
}

void Session::end_transaction(bool committed) noexcept {
    if (observer_) observer_->on_transaction(elapsed_ns(began_at_), committed);
}

Backend Session::backend() const noexcept { return pool_->options().backend; }

}  // namespace dbsup
