#include "worker/task_registry.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>

#include "config/names.hpp"
#include "shared/errors.hpp"
#include "worker/command_task.hpp"
#include "worker/named_sql.hpp"
#include "worker/permanent_job_error.hpp"

namespace dbsup {
namespace {

Value value_of(const nlohmann::json& v) {
    if (v.is_null()) return nullptr;
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return std::int64_t{v.get<bool>() ? 1 : 0};
    if (v.is_number_integer()) return v.get<std::int64_t>();
    if (v.is_number()) return v.get<double>();
    return v.dump();  // objects and arrays are bound as JSON text
}

// `:job_id` is the job's own id; every other name comes from the payload.
Params bind(const NamedSql& statement, const Job& job, const nlohmann::json& payload,
            const std::string& task) {
    Params params;
    params.reserve(statement.names.size());
    for (const std::string& name : statement.names) {
        if (name == "job_id") {
            params.emplace_back(job.id);
            continue;
        }
        auto it = payload.find(name);
        if (it == payload.end())
            throw PermanentJobError("the payload has no '" + name + "', which task '" + task +
                                    "' needs");
        params.push_back(value_of(*it));
    }
    return params;
}

// What a SQL task's handler and statement list share; it outlives every
// statement list handed out (the registry holds it).
struct SqlTask {
    std::string name;
    std::vector<NamedSql> statements;
    QueryLabel label;

    std::vector<PendingStatement> bound(const Job& job, const nlohmann::json& payload) const {
        std::vector<PendingStatement> out;
        out.reserve(statements.size());
        for (const NamedSql& statement : statements)
            out.push_back({&label, statement.sql, bind(statement, job, payload, name)});
        return out;
    }
};

TaskDefinition sql_task(const TaskConfig& config) {
    std::vector<NamedSql> statements;
    for (const std::string& sql : config.sql) statements.push_back(NamedSql::compile(sql));
    auto task = std::make_shared<const SqlTask>(
        SqlTask{config.name, std::move(statements), QueryLabel("task", config.name, config.database)});
    TaskDefinition definition{config.name, config.database, config.timeout_ms,
                              [task](const Job& job, const nlohmann::json& payload, Session& s) {
                                  for (PendingStatement& st : task->bound(job, payload))
                                      s.execute(*st.label, st.sql, st.params);
                              },
                              true,
                              {}};
    definition.statements = [task](const Job& job, const nlohmann::json& payload) {
        return task->bound(job, payload);
    };
    return definition;
}

constexpr std::int64_t kMaxSleepMs = 3'600'000;

// payload.ms, at most an hour: a drain waits for running jobs (up to
// graceful_timeout_s), and a test job must not ask for more than that bound.
std::chrono::milliseconds sleep_time(const nlohmann::json& payload) {
    const auto ms = payload.value("ms", std::int64_t{0});
    if (ms < 0 || ms > kMaxSleepMs)
        throw PermanentJobError("sleep: ms must be from 0 to " + std::to_string(kMaxSleepMs));
    return std::chrono::milliseconds(ms);
}

// Waits on the job's stop token, as a long C++ handler should: a cancelled
// job stops at once instead of sleeping on.
void sleep_task(const Job& job, const nlohmann::json& payload, Session&) {
    const auto ms = sleep_time(payload);
    std::mutex mutex;
    std::condition_variable_any stopped;
    std::unique_lock lock(mutex);
    std::stop_token stop = job.stop;
    if (stopped.wait_for(lock, stop, ms, [] { return false; })) return;
    if (stop.stop_requested()) throw std::runtime_error("sleep: stopped");
}

// The same in async mode: a timer on the event loop, no thread held.
Awaitable<void> sleep_task_async(const Job&, const nlohmann::json& payload, AsyncSession&) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, sleep_time(payload));
    co_await timer.async_wait(boost::asio::use_awaitable);
}

// The demo job of `run --demo N`: one real round trip to the queue's database.
void demo_task(const Job&, const nlohmann::json& payload, Session& s) {
    static const QueryLabel label{"task", "demo", "queue"};
    s.execute(label, "SELECT $1 * 2", {payload.value("n", std::int64_t{0})});
}

}  // namespace

TaskRegistry TaskRegistry::from_config(const Config& config) {
    TaskRegistry registry;
    const std::string& db = config.queue.database;
    registry.queue_database_ = db;
    registry.add({"noop", db, 0, [](const Job&, const nlohmann::json&, Session&) {}, false, {}});
    TaskDefinition sleep{"sleep", db, 0, sleep_task, false, {}};
    sleep.async_handler = sleep_task_async;
    registry.add(std::move(sleep));
    registry.add({"demo", db, 0, demo_task, true, {}});
    for (const auto& [name, task] : config.tasks)
        registry.add(task.command.empty() ? sql_task(task) : CommandTask::definition(task, db));
    return registry;
}

TaskRegistry TaskRegistry::build(const Config& config, const TaskRegistrar& register_tasks) {
    TaskRegistry registry = from_config(config);
    if (register_tasks) register_tasks(registry);
    return registry;
}

void TaskRegistry::check_new(const std::string& name, bool has_handler) const {
    if (contains(name))
        throw Error(ErrorCode::usage, "task '" + name + "' is defined twice: a C++ handler "
                                      "cannot take the name of a built-in or a [tasks." + name +
                                      "] of the configuration");
    if (!is_valid_name(name))
        throw Error(ErrorCode::usage, "task name '" + name + "': a task name must be " + kNameRule);
    if (!has_handler) throw Error(ErrorCode::usage, "task '" + name + "': the handler is empty");
}

void TaskRegistry::add(const std::string& name, TaskHandler handler, std::int64_t timeout_ms) {
    check_new(name, static_cast<bool>(handler));
    add(TaskDefinition{name, queue_database_, timeout_ms, std::move(handler), true, {}});
}

void TaskRegistry::add_async(const std::string& name, AsyncTaskHandler handler,
                             std::int64_t timeout_ms) {
    check_new(name, static_cast<bool>(handler));
    TaskDefinition task{name, queue_database_, timeout_ms, {}, true, {}};
    task.async_handler = std::move(handler);
    add(std::move(task));
}

void TaskRegistry::add(TaskDefinition task) {
    std::string name = task.name;
    tasks_[name] = std::move(task);
}

const TaskDefinition* TaskRegistry::find(const std::string& name) const {
    auto it = tasks_.find(name);
    return it == tasks_.end() ? nullptr : &it->second;
}

}  // namespace dbsup
