#include "shared/job_log_scope.hpp"

namespace dbsup {
namespace {

// Per thread, and only ever pointing at a scope alive on that thread's stack.
thread_local const JobLogScope* current_scope = nullptr;

}  // namespace

JobLogScope::JobLogScope(const Job& job, std::chrono::steady_clock::time_point started) noexcept
    : job_(job), started_(started), outer_(current_scope) {
    current_scope = this;
}

JobLogScope::~JobLogScope() { current_scope = outer_; }

const JobLogScope* JobLogScope::current() noexcept { return current_scope; }

}  // namespace dbsup
