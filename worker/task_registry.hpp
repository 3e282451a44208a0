// The tasks a worker can run, by name: the SQL tasks of [tasks.NAME], the
// built-ins (noop, sleep, demo), and any C++ handler registered with add().
// A handler is given the job, its parsed payload and a ready Session on the
// task's database with a transaction open; the runner commits it together with
// the job's completion when the task's database is the queue's.
//
// Thread-safety: filled before the runner starts, then read-only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.hpp"
#include "shared/db/async_session.hpp"
#include "shared/db/session.hpp"
#include "shared/queue/job.hpp"

namespace dbsup {

using TaskHandler = std::function<void(const Job&, const nlohmann::json& payload, Session&)>;
/// A coroutine handler for [worker] mode = "async": it runs on the worker's
/// event loop with an AsyncSession on the queue's database; the transaction
/// begins with its first statement and commits with the job's completion.
using AsyncTaskHandler =
    std::function<Awaitable<void>(const Job&, const nlohmann::json& payload, AsyncSession&)>;
/// A SQL task's statements for one job, bound from its payload, so a batch can
/// send many jobs' statements at once. @throws PermanentJobError
using TaskStatements =
    std::function<std::vector<PendingStatement>(const Job&, const nlohmann::json& payload)>;

struct TaskDefinition {
    std::string name;
    std::string database;
    std::int64_t timeout_ms = 0;  // 0 = no limit
    TaskHandler handler;
    bool uses_session = true;  // false: the handler runs no statement (no savepoint needed)
    TaskStatements statements;  // SQL tasks: what the handler runs, as data
    AsyncTaskHandler async_handler = {};  // set: a coroutine task (handler is then empty)
};

class TaskRegistry;
/// A program's own C++ handlers, added after the configured tasks (dbsup::run).
using TaskRegistrar = std::function<void(TaskRegistry&)>;

class TaskRegistry {
public:
    /// The built-ins on the queue's database, then every configured SQL task.
    static TaskRegistry from_config(const Config& config);
    /// from_config(), then what register_tasks adds. @throws Error(usage) from add().
    static TaskRegistry build(const Config& config, const TaskRegistrar& register_tasks);

    /// Adds or replaces a task.
    void add(TaskDefinition task);
    /// A C++ handler on the queue's database: it runs in the job's transaction,
    /// which commits with the job's completion. timeout_ms 0: no limit.
    /// @throws Error(usage) when a task of that name exists (a built-in or [tasks.NAME]).
    void add(const std::string& name, TaskHandler handler, std::int64_t timeout_ms = 0);
    /// A coroutine handler on the queue's database, for [worker] mode =
    /// "async" (a sync-mode worker fails its jobs, naming the setting).
    /// timeout_ms 0: no limit; at the limit its running statement is
    /// cancelled on the server. @throws Error(usage) as add() does.
    void add_async(const std::string& name, AsyncTaskHandler handler, std::int64_t timeout_ms = 0);
    /// nullptr when no task has that name.
    const TaskDefinition* find(const std::string& name) const;
    bool contains(const std::string& name) const { return find(name) != nullptr; }

private:
    /// @throws Error(usage) for a taken or invalid name, or an empty handler.
    void check_new(const std::string& name, bool has_handler) const;

    std::map<std::string, TaskDefinition> tasks_;
    std::string queue_database_ = "main";
};

}  // namespace dbsup
