#include "config/config_printer.hpp"

#include <nlohmann/json.hpp>
#include <sstream>

#include <toml++/toml.h>

namespace dbsup {
namespace {

// A password taken from DATABASE_PASSWORD is shown as where it comes from, so
// the text can be read back (by a worker, from the environment it inherits).
toml::table database_table(const DatabaseConfig& db) {
    DatabaseUrl url = db.url;
    std::string password_env = db.password_env;
    if (url.password) {
        url.password.reset();
        password_env = "DATABASE_PASSWORD";
    }
    toml::table t{{"url", url.redacted()},
                  {"pool_size", db.pool_size},
                  {"max_overflow", db.max_overflow},
                  {"pool_timeout_ms", db.pool_timeout_ms},
                  {"pre_ping", db.pre_ping},
                  {"recycle_s", db.recycle_s},
                  {"leak_detection_ms", db.leak_detection_ms},
                  {"optional", db.optional},
                  {"statement_timeout_ms", db.statement_timeout_ms},
                  {"pooler", db.pooler}};
    if (db.listen_url) t.insert("listen_url", db.listen_url->redacted());
    if (!password_env.empty()) t.insert("password_env", password_env);
    if (!db.password_file.empty()) t.insert("password_file", db.password_file);
    if (db.url.backend == Backend::sqlite)
        t.insert("sqlite", toml::table{{"journal_mode", db.sqlite.journal_mode},
                                       {"busy_timeout_ms", db.sqlite.busy_timeout_ms}});
    return t;
}

toml::table task_table(const TaskConfig& task) {
    toml::array sql, command;
    for (const auto& statement : task.sql) sql.push_back(statement);
    for (const auto& word : task.command) command.push_back(word);
    toml::table t{{"database", task.database},
                  {"max_attempts", task.max_attempts},
                  {"timeout_ms", task.timeout_ms}};
    if (task.command.empty())
        t.insert("sql", sql);
    else
        t.insert("command", command);
    return t;
}

// A schedule's payload came from a TOML table (config_loader.cpp), so it holds
// nothing TOML lacks (no null).
void insert_json(toml::table& table, const std::string& key, const nlohmann::json& value);

toml::array json_array(const nlohmann::json& array) {
    toml::array out;
    for (const nlohmann::json& item : array) {
        toml::table holder;
        insert_json(holder, "v", item);
        out.push_back(*holder.get("v"));
    }
    return out;
}

void insert_json(toml::table& table, const std::string& key, const nlohmann::json& value) {
    if (value.is_object()) {
        toml::table sub;
        for (const auto& [k, v] : value.items()) insert_json(sub, k, v);
        table.insert(key, std::move(sub));
    } else if (value.is_array()) {
        table.insert(key, json_array(value));
    } else if (value.is_boolean()) {
        table.insert(key, value.get<bool>());
    } else if (value.is_number_integer()) {
        table.insert(key, value.get<std::int64_t>());
    } else if (value.is_number()) {
        table.insert(key, value.get<double>());
    } else if (value.is_string()) {
        table.insert(key, value.get<std::string>());
    }
}

toml::table schedule_table(const ScheduleConfig& s) {
    toml::table t{{"task", s.task},
                  {"timezone", s.timezone},
                  {"priority", s.priority},
                  {"catch_up", s.catch_up}};
    if (s.every_ms > 0)
        t.insert("every", std::to_string(s.every_ms / 1000) + "s");
    else
        t.insert("cron", s.cron);
    if (!s.queue.empty()) t.insert("queue", s.queue);
    insert_json(t, "payload", nlohmann::json::parse(s.payload));
    return t;
}

}  // namespace

std::string ConfigPrinter::to_toml(const Config& c) {
    const SupervisorConfig& s = c.supervisor;
    toml::table databases;
    for (const auto& [name, db] : c.databases) databases.insert(name, database_table(db));
    toml::table tasks;
    for (const auto& [name, task] : c.tasks) tasks.insert(name, task_table(task));
    toml::table queues;
    for (const auto& [name, q] : c.queues) {
        toml::table t{{"threads", q.threads}};
        if (q.claim_batch > 0) t.insert("claim_batch", q.claim_batch);
        queues.insert(name, std::move(t));
    }
    toml::table schedules;
    for (const auto& [name, schedule] : c.schedules) schedules.insert(name, schedule_table(schedule));
    const RetryConfig& r = c.resilience.retry;
    const CircuitBreakerConfig& cb = c.resilience.circuit_breaker;
    toml::table root{
        {"supervisor",
         toml::table{{"workers", s.workers},
                     {"stats_file", s.stats_file},
                     {"stats_interval_ms", s.stats_interval_ms},
                     {"graceful_timeout_s", s.graceful_timeout_s},
                     {"worker_timeout_s", s.worker_timeout_s},
                     {"restart_backoff_ms",
                      toml::array{s.restart_backoff_min_ms, s.restart_backoff_max_ms}},
                     {"pidfile", s.pidfile}}},
        {"worker", toml::table{{"threads", c.worker.threads},
                               {"mode", c.worker.mode},
                               {"max_in_flight", c.worker.max_in_flight}}},
        {"databases", databases},
        {"queue", toml::table{{"database", c.queue.database},
                              {"claim_batch", c.queue.claim_batch},
                              {"poll_interval_ms", c.queue.poll_interval_ms},
                              {"wake", c.queue.wake},
                              {"claim_time_ms", c.queue.claim_time_ms},
                              {"lease_s", c.queue.lease_s},
                              {"retention_s", c.queue.retention_s},
                              {"dead_retention_s", c.queue.dead_retention_s},
                              {"name", c.queue.name},
                              {"retry_base_ms", c.queue.retry_base_ms},
                              {"retry_max_ms", c.queue.retry_max_ms},
                              {"max_payload_bytes", c.queue.max_payload_bytes}}},
        {"queues", queues},
        {"monitoring", toml::table{{"slow_query_ms", c.monitoring.slow_query_ms},
                                   {"statement_cache_size", c.monitoring.statement_cache_size}}},
        {"resilience",
         toml::table{{"retry", toml::table{{"attempts", r.attempts},
                                           {"base_ms", r.base_ms},
                                           {"max_ms", r.max_ms}}},
                     {"circuit_breaker", toml::table{{"failure_rate", cb.failure_rate},
                                                     {"window", cb.window},
                                                     {"open_ms", cb.open_ms},
                                                     {"half_open_calls", cb.half_open_calls}}}}},
        {"tasks", tasks},
        {"schedules", schedules}};
    std::ostringstream out;
    out << "# resolved from " << c.source << "\n" << root << "\n";
    return out.str();
}

}  // namespace dbsup
