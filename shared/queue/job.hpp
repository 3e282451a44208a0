// A job of the durable queue (DESIGN section 7) as the runner and the operator
// commands see it. Times are Unix epoch milliseconds, as stored.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>

namespace dbsup {

/// What a caller asks for; empty or zero fields take the queue's defaults.
struct NewJob {
    std::string task;
    std::string payload = "{}";  // a JSON object
    std::string queue;           // "" = the configured queue
    std::int64_t priority = 0;   // lower runs first
    std::int64_t run_at_ms = 0;  // 0 = now
    std::int64_t max_attempts = 0;  // 0 = the task's max_attempts (else 5)
    /// Non-empty: at most one job with this key is waiting or running; an
    /// enqueue that finds one returns it instead (Queue::enqueue_unique).
    std::string unique_key;
    /// > 0: a job with the key that succeeded this recently counts too.
    std::int64_t unique_for_ms = 0;
};

/// What enqueue_unique() did: the new job, or the one already holding the key.
struct Enqueued {
    std::string id;
    bool duplicate = false;
};

struct Job {
    std::string id;
    std::string queue;
    std::string task;
    std::string payload;
    std::string state;  // available, running, succeeded, dead (cancelled: see cancelled)
    std::int64_t priority = 0;
    std::int64_t run_at_ms = 0;
    std::int64_t attempts = 0;  // including the one running now
    std::int64_t max_attempts = 0;
    std::string locked_by;
    std::int64_t locked_until_ms = 0;
    std::string last_error;
    std::int64_t created_at_ms = 0;
    std::int64_t finished_at_ms = 0;
    /// An operator cancelled it (`jobs cancel`): it ended, or will end, dead.
    /// Read by find() and list() only.
    bool cancelled = false;
    /// While it runs: requested when an operator cancels it. A long C++
    /// handler checks stop.stop_requested() (or registers a std::stop_callback).
    std::stop_token stop;
};

}  // namespace dbsup
