// The typed, validated configuration of dbsupervisor (DESIGN section 4).
// Built by ConfigLoader from a TOML file or from the DATABASE_* environment; once
// built it is plain data, read-only, and safe to share between threads.
// Secrets: a password is never stored here except when it came from the
// DATABASE_PASSWORD variable; everything printable goes through redaction.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/database_url.hpp"

namespace dbsup {

struct SqliteSettings {
    std::string journal_mode = "wal";
    std::int64_t busy_timeout_ms = 5000;
};

struct DatabaseConfig {
    std::string name;
    DatabaseUrl url;
    /// 0 until resolved: a worker's job threads each hold one session per
    /// database, so ConfigLoader sizes the pool to [worker] threads unless set.
    std::int64_t pool_size = 0;
    std::int64_t max_overflow = 0;
    std::int64_t pool_timeout_ms = 5000;
    bool pre_ping = true;
    std::int64_t recycle_s = 3600;
    std::int64_t leak_detection_ms = 0;
    bool optional = false;
    std::int64_t statement_timeout_ms = 0;
    std::string password_env;   // name of the variable holding the password
    std::string password_file;  // path of a file holding the password
    /// "transaction": behind a transaction-pooling proxy such as PgBouncer, so
    /// nothing may outlive a transaction on the server (no named prepared
    /// statements, no session SET, no LISTEN). "none" (direct) and "session"
    /// (session pooling) keep everything.
    std::string pooler = "none";
    /// A direct connection for LISTEN when url goes through a pooler.
    std::optional<DatabaseUrl> listen_url;
    SqliteSettings sqlite;

    bool transaction_pooled() const { return pooler == "transaction"; }
};

struct SupervisorConfig {
    std::int64_t workers = 4;
    std::string stats_file = "dbsupervisor-stats.json";
    std::int64_t stats_interval_ms = 1000;
    std::int64_t graceful_timeout_s = 30;
    std::int64_t worker_timeout_s = 30;
    std::int64_t restart_backoff_min_ms = 100;
    std::int64_t restart_backoff_max_ms = 10000;
    std::string pidfile;
};

struct WorkerConfig {
    std::int64_t threads = 4;
    /// "sync": `threads` job threads; "async": one event-loop thread running up
    /// to max_in_flight jobs at once (coroutine handlers and SQL tasks; the
    /// rest on `threads` threads beside it).
    std::string mode = "sync";
    std::int64_t max_in_flight = 64;
};

struct QueueConfig {
    std::string database = "main";
    std::int64_t claim_batch = 1024;       // the cap: claims size themselves (ClaimTuner)
    std::int64_t poll_interval_ms = 50;     // "poll" mode, or while LISTEN is down
    std::string wake = "auto";              // "auto": PostgreSQL LISTEN/NOTIFY; "poll"
    std::int64_t claim_time_ms = 50;        // a claim holds about this much work (see JobRunner)
    std::int64_t lease_s = 60;
    std::int64_t retention_s = 86400;       // succeeded jobs are deleted this long after
    std::int64_t dead_retention_s = 604800;  // dead (and cancelled) ones this long; 0: kept
    std::string name = "default";           // the queue these workers take jobs from
    std::int64_t retry_base_ms = 1000;      // a failed job waits up to base*2^(attempt-1)
    std::int64_t retry_max_ms = 600000;     // ... capped here (full jitter)
    std::int64_t max_payload_bytes = 4 * 1024 * 1024;  // larger payloads are refused at enqueue
};

/// One of several queues a worker takes jobs from ([queues.NAME]), with its
/// own job threads, so a flood of slow jobs in one never holds up another.
struct QueueShareConfig {
    std::string name;
    std::int64_t threads = 1;      // job threads per worker for this queue
    std::int64_t claim_batch = 0;  // 0: [queue] claim_batch
};

struct MonitoringConfig {
    std::int64_t slow_query_ms = 200;
    std::int64_t statement_cache_size = 100;
};

struct RetryConfig {
    std::int64_t attempts = 3;
    std::int64_t base_ms = 20;
    std::int64_t max_ms = 2000;
};

struct CircuitBreakerConfig {
    double failure_rate = 0.5;
    std::int64_t window = 20;
    std::int64_t open_ms = 5000;
    std::int64_t half_open_calls = 3;
};

struct ResilienceConfig {
    RetryConfig retry;
    CircuitBreakerConfig circuit_breaker;
};

struct TaskConfig {
    std::string name;
    std::string database = "main";
    std::vector<std::string> sql;  // run in order, in one transaction
    /// Or a program run per job (argv, no shell): the payload on stdin
    /// (worker/command_task.hpp). Exactly one of sql and command is given.
    std::vector<std::string> command;
    std::int64_t max_attempts = 5;
    std::int64_t timeout_ms = 10000;
};

/// A periodic job (supervisor/scheduler.hpp): at each firing of cron (or
/// every every_ms, counted from the Unix epoch) one job of `task` is enqueued,
/// once however many supervisors share the queue's database.
struct ScheduleConfig {
    std::string name;
    std::string cron;              // five fields or a @shortcut; or
    std::int64_t every_ms = 0;     // > 0: this period instead
    std::string timezone = "UTC";  // an IANA name; cron's fields are local times there
    std::string task;
    std::string payload = "{}";    // a JSON object
    std::string queue;             // "" = [queue] name
    std::int64_t priority = 0;
    /// Firings missed while no supervisor ran: "none" (skipped), "last" (the
    /// latest one enqueued), "all" (each, at most the latest 100).
    std::string catch_up = "last";
};

struct Config {
    std::string source;  // the file it came from, or "environment"
    SupervisorConfig supervisor;
    WorkerConfig worker;
    std::map<std::string, DatabaseConfig> databases;
    QueueConfig queue;
    /// Empty: every job thread takes jobs from [queue] name. Else worker.threads
    /// is their sum, and [queue] name (where enqueue puts jobs) is one of them.
    std::map<std::string, QueueShareConfig> queues;
    MonitoringConfig monitoring;
    ResilienceConfig resilience;
    std::map<std::string, TaskConfig> tasks;
    std::map<std::string, ScheduleConfig> schedules;
};

}  // namespace dbsup
