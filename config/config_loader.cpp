// Section by section, in the order of DESIGN section 4. Cross-references (a task
// or the queue naming a database) are checked after every section is read.
#include "config/config_loader.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <cctype>
#include <sstream>

#include <date/tz.h>

#include "config/config_error.hpp"
#include "config/cron_expression.hpp"
#include "config/duration.hpp"
#include "config/names.hpp"
#include "config/sql_text.hpp"
#include "config/section_reader.hpp"

namespace dbsup {
namespace {

constexpr std::int64_t kHour = 3'600'000;
constexpr std::int64_t kDaySeconds = 86'400;

class FileParser {
public:
    FileParser(const toml::table& root, const std::string& file) : root_(root), file_(file) {}

    Config parse() {
        config_.source = file_;
        SectionReader top(root_, "", file_, diagnostics_);
        if (auto* t = top.table("supervisor")) read_supervisor(*t);
        if (auto* t = top.table("worker")) read_worker(*t);
        if (auto* t = top.table("databases")) read_databases(*t);
        if (auto* t = top.table("queue")) read_queue(*t);
        if (auto* t = top.table("queues")) read_queues(*t, top);
        if (auto* t = top.table("monitoring")) read_monitoring(*t);
        if (auto* t = top.table("resilience")) read_resilience(*t);
        if (auto* t = top.table("tasks")) read_tasks(*t);
        if (auto* t = top.table("schedules")) read_schedules(*t);
        top.finish();
        if (config_.databases.empty()) add_default_database();
        check_references();
        if (!diagnostics_.empty()) throw ConfigError(std::move(diagnostics_));
        ConfigLoader::size_pools(config_);
        return std::move(config_);
    }

private:
    void read_supervisor(const toml::table& table) {
        SectionReader r(table, "supervisor", file_, diagnostics_);
        SupervisorConfig& s = config_.supervisor;
        r.integer("workers", s.workers, 1, 256);
        r.string("stats_file", s.stats_file, false);
        r.integer("stats_interval_ms", s.stats_interval_ms, 10, kHour);
        r.integer("graceful_timeout_s", s.graceful_timeout_s, 1, kDaySeconds);
        r.integer("worker_timeout_s", s.worker_timeout_s, 1, kDaySeconds);
        r.integer_pair("restart_backoff_ms", s.restart_backoff_min_ms, s.restart_backoff_max_ms, 1,
                       kHour);
        r.string("pidfile", s.pidfile);
        r.finish();
    }

    void read_worker(const toml::table& table) {
        SectionReader r(table, "worker", file_, diagnostics_);
        r.integer("threads", config_.worker.threads, 1, 256);
        r.choice("mode", config_.worker.mode, {"sync", "async"});
        // Each job in flight marks its start in one of the slot's 256 runner entries.
        r.integer("max_in_flight", config_.worker.max_in_flight, 1, 256);
        r.finish();
    }

    void read_databases(const toml::table& table) {
        for_each_named("databases", "database", table,
                        [this](const std::string& name, const toml::table& sub) {
                            read_database(name, sub);
                        });
    }

    // Calls read(name, sub-table) for each [section.NAME] with a valid name.
    template <class Read>
    void for_each_named(const char* section, const char* what, const toml::table& table,
                        Read read) {
        SectionReader all(table, section, file_, diagnostics_);
        for (const auto& [key, node] : table) {
            std::string name(key.str());
            const toml::table* sub = all.table(name.c_str());
            if (!sub) continue;
            if (is_valid_name(name))
                read(name, *sub);
            else
                all.error(name.c_str(), std::string("a ") + what + " name must be " + kNameRule);
        }
    }

    void read_database(const std::string& name, const toml::table& table) {
        SectionReader r(table, "databases." + name, file_, diagnostics_);
        DatabaseConfig db;
        db.name = name;
        if (r.require("url")) read_url(r, db);
        r.integer("pool_size", db.pool_size, 1, 1000);
        r.integer("max_overflow", db.max_overflow, 0, 1000);
        r.integer("pool_timeout_ms", db.pool_timeout_ms, 1, kHour);
        r.boolean("pre_ping", db.pre_ping);
        r.integer("recycle_s", db.recycle_s, 0, 365 * kDaySeconds);
        r.integer("leak_detection_ms", db.leak_detection_ms, 0, kHour);
        r.boolean("optional", db.optional);
        r.integer("statement_timeout_ms", db.statement_timeout_ms, 0, 24 * kHour);
        read_password(r, db);
        read_pooler(r, db);
        if (const toml::table* sqlite = r.table("sqlite")) read_sqlite(r, *sqlite, db);
        r.finish();
        config_.databases[name] = std::move(db);
    }

    void read_url(SectionReader& r, DatabaseConfig& db) {
        std::string text;
        r.string("url", text, false);
        if (text.empty()) return;
        try {
            db.url = DatabaseUrl::parse(text);
        } catch (const std::invalid_argument& e) {
            r.error("url", e.what());
        }
    }

    void read_pooler(SectionReader& r, DatabaseConfig& db) {
        r.choice("pooler", db.pooler, {"none", "session", "transaction"});
        std::string text;
        r.string("listen_url", text, false);
        if (!text.empty()) {
            try {
                db.listen_url = DatabaseUrl::parse(text);
                if (db.listen_url->backend != Backend::postgresql)
                    r.error("listen_url", "must be a postgresql:// URL (a direct connection "
                                          "to the server, for LISTEN)");
            } catch (const std::invalid_argument& e) {
                r.error("listen_url", e.what());
            }
        }
        if (db.url.backend != Backend::sqlite) return;
        if (db.pooler != "none") r.error("pooler", "an SQLite database has no pooler");
        if (!text.empty()) r.error("listen_url", "an SQLite database has no LISTEN");
    }

    void read_password(SectionReader& r, DatabaseConfig& db) {
        if (r.has("password"))
            r.error("password",
                    "passwords are never written in the config file; use password_env "
                    "(a variable's name) or password_file (a file's path)");
        r.string("password_env", db.password_env, false);
        r.string("password_file", db.password_file, false);
        if (!db.password_env.empty() && !db.password_file.empty())
            r.error("password_file", "give password_env or password_file, not both");
        if (db.url.backend == Backend::sqlite && !(db.password_env + db.password_file).empty())
            r.error(db.password_env.empty() ? "password_file" : "password_env",
                    "an SQLite database has no password");
    }

    void read_sqlite(SectionReader& parent, const toml::table& table, DatabaseConfig& db) {
        SectionReader r(table, parent.key_path("sqlite"), file_, diagnostics_);
        r.choice("journal_mode", db.sqlite.journal_mode,
                 {"wal", "delete", "truncate", "persist", "memory", "off"});
        r.integer("busy_timeout_ms", db.sqlite.busy_timeout_ms, 0, kHour);
        r.finish();
        if (db.url.backend != Backend::sqlite)
            parent.error("sqlite", "SQLite settings given for a PostgreSQL database");
    }

    void read_queue(const toml::table& table) {
        SectionReader r(table, "queue", file_, diagnostics_);
        QueueConfig& q = config_.queue;
        r.string("database", q.database, false);
        r.integer("claim_batch", q.claim_batch, 1, 10000);
        r.integer("poll_interval_ms", q.poll_interval_ms, 1, 60000);
        r.choice("wake", q.wake, {"auto", "poll"});
        r.integer("claim_time_ms", q.claim_time_ms, 1, 60000);
        r.integer("lease_s", q.lease_s, 1, kDaySeconds);
        r.integer("retention_s", q.retention_s, 0, 3650 * kDaySeconds);
        r.integer("dead_retention_s", q.dead_retention_s, 0, 3650 * kDaySeconds);
        r.string("name", q.name, false);
        if (!is_valid_name(q.name)) r.error("name", std::string("a queue name must be ") + kNameRule);
        r.integer("retry_base_ms", q.retry_base_ms, 0, kDaySeconds * 1000);
        r.integer("retry_max_ms", q.retry_max_ms, 0, kDaySeconds * 1000);
        r.integer("max_payload_bytes", q.max_payload_bytes, 2, 1024 * 1024 * 1024);
        if (q.retry_base_ms > q.retry_max_ms)
            r.error("retry_max_ms", "must be at least retry_base_ms");
        r.finish();
    }

    void read_queues(const toml::table& table, SectionReader& top) {
        std::int64_t threads = 0;
        for_each_named("queues", "queue", table, [&](const std::string& name,
                                                     const toml::table& sub) {
            SectionReader r(sub, "queues." + name, file_, diagnostics_);
            QueueShareConfig share;
            share.name = name;
            r.integer("threads", share.threads, 1, 256);
            r.integer("claim_batch", share.claim_batch, 1, 10000);
            r.finish();
            threads += share.threads;
            config_.queues[name] = share;
        });
        if (config_.queues.empty()) return;
        if (config_.worker.mode == "async")
            top.error("queues", "[worker] mode = \"async\" takes jobs from [queue] name only; "
                                "[queues.*] need mode = \"sync\"");
        if (threads > 256) top.error("queues", "more than 256 job threads in all");
        const toml::node* worker_threads = root_.at_path("worker.threads").node();
        if (worker_threads && worker_threads->value<std::int64_t>() != threads)
            top.error("queues", "[worker] threads = " +
                                    std::to_string(config_.worker.threads) +
                                    " disagrees with the sum of [queues.*] threads (" +
                                    std::to_string(threads) + "); leave threads out of [worker]");
        config_.worker.threads = threads;
        if (!config_.queues.count(config_.queue.name))
            top.error("queues", "[queue] name = \"" + config_.queue.name +
                                    "\" (where enqueue puts jobs) is not one of the [queues.*]; "
                                    "set [queue] name to one of them");
    }

    void read_monitoring(const toml::table& table) {
        SectionReader r(table, "monitoring", file_, diagnostics_);
        r.integer("slow_query_ms", config_.monitoring.slow_query_ms, 0, kHour);
        r.integer("statement_cache_size", config_.monitoring.statement_cache_size, 0, 10000);
        r.finish();
    }

    void read_resilience(const toml::table& table) {
        SectionReader r(table, "resilience", file_, diagnostics_);
        if (const toml::table* t = r.table("retry")) {
            SectionReader retry(*t, "resilience.retry", file_, diagnostics_);
            RetryConfig& c = config_.resilience.retry;
            retry.integer("attempts", c.attempts, 1, 100);
            retry.integer("base_ms", c.base_ms, 1, 60000);
            retry.integer("max_ms", c.max_ms, 1, kHour);
            if (c.base_ms > c.max_ms) retry.error("max_ms", "must be at least base_ms");
            retry.finish();
        }
        if (const toml::table* t = r.table("circuit_breaker")) {
            SectionReader cb(*t, "resilience.circuit_breaker", file_, diagnostics_);
            CircuitBreakerConfig& c = config_.resilience.circuit_breaker;
            cb.number("failure_rate", c.failure_rate, 0.01, 1.0);
            cb.integer("window", c.window, 1, 10000);
            cb.integer("open_ms", c.open_ms, 1, kHour);
            cb.integer("half_open_calls", c.half_open_calls, 1, 1000);
            cb.finish();
        }
        r.finish();
    }

    void read_tasks(const toml::table& table) {
        for_each_named("tasks", "task", table, [this](const std::string& name,
                                                      const toml::table& sub) {
            SectionReader r(sub, "tasks." + name, file_, diagnostics_);
            TaskConfig task;
            task.name = name;
            r.string("database", task.database, false);
            if (r.has("command")) {
                r.string_list("command", task.command);
                if (!task.command.empty() && task.command[0].empty())
                    r.error("command", "give the program and its arguments: command = "
                                       "[\"/usr/local/bin/thumb\", \"--size\", \"200\"]");
                if (r.has("sql")) r.error("sql", "give sql or command, not both");
            } else if (r.require("sql")) {
                r.string_list("sql", task.sql);
            }
            for (const std::string& sql : task.sql)
                if (std::size_t n = count_sql_statements(sql); n != 1)
                    r.error("sql", "each string must hold exactly one statement, this one has " +
                                       std::to_string(n) +
                                       "; give several as a list: sql = [\"...\", \"...\"]");
            r.integer("max_attempts", task.max_attempts, 1, 1000);
            r.integer("timeout_ms", task.timeout_ms, 1, 24 * kHour);
            r.finish();
            config_.tasks[name] = std::move(task);
        });
    }

    void read_schedules(const toml::table& table) {
        for_each_named("schedules", "schedule", table, [this](const std::string& name,
                                                              const toml::table& sub) {
            SectionReader r(sub, "schedules." + name, file_, diagnostics_);
            ScheduleConfig s;
            s.name = name;
            read_schedule_timing(r, s);
            if (r.require("task")) r.string("task", s.task, false);
            if (!s.task.empty() && !is_valid_name(s.task))
                r.error("task", std::string("a task name must be ") + kNameRule);
            if (const toml::table* payload = r.table("payload")) {
                std::ostringstream json;
                json << toml::json_formatter{*payload};
                s.payload = json.str();
            }
            r.string("queue", s.queue, false);
            if (!s.queue.empty() && !is_valid_name(s.queue))
                r.error("queue", std::string("a queue name must be ") + kNameRule);
            r.integer("priority", s.priority, -1000000, 1000000);
            r.choice("catch_up", s.catch_up, {"none", "last", "all"});
            r.finish();
            config_.schedules[name] = std::move(s);
        });
    }

    void read_schedule_timing(SectionReader& r, ScheduleConfig& s) {
        if (r.has("cron") == r.has("every"))
            r.error("cron", "give cron = \"0 3 * * *\" (or a shortcut such as \"@hourly\") or "
                            "every = \"30s\", exactly one");
        if (r.has("cron")) {
            r.string("cron", s.cron, false);
            try {
                CronExpression cron = CronExpression::parse(s.cron);
                if (!cron.next_after(std::chrono::floor<std::chrono::seconds>(
                                         std::chrono::system_clock::now()),
                                     *date::locate_zone("UTC")))
                    r.error("cron", "'" + s.cron + "' never fires");
            } catch (const CronError& e) {
                r.error("cron", e.what());
            }
        }
        if (r.has("every")) {
            std::string every;
            r.string("every", every, false);
            try {
                s.every_ms = parse_duration_ms(every);
                if (s.every_ms < 1000 || s.every_ms % 1000 != 0)
                    r.error("every", "'" + every + "' must be whole seconds, at least 1s");
            } catch (const std::invalid_argument& e) {
                r.error("every", e.what());
            }
        }
        r.string("timezone", s.timezone, false);
        try {
            date::locate_zone(s.timezone);
        } catch (const std::exception&) {
            r.error("timezone", "'" + s.timezone +
                                    "' is not a time zone of the IANA database (e.g. "
                                    "\"Europe/Berlin\", \"UTC\")");
        }
    }

    void add_default_database() {
        DatabaseConfig db;
        db.name = "main";
        config_.databases["main"] = db;
    }

    void check_references() {
        if (!config_.databases.count(config_.queue.database))
            reference_error({"queue"}, "database", config_.queue.database);
        for (const auto& [name, task] : config_.tasks)
            if (!config_.databases.count(task.database))
                reference_error({"tasks", name}, "database", task.database);
    }

    void reference_error(std::initializer_list<std::string> path, const char* key,
                         const std::string& value) {
        // Any step may be missing or not a table (`queue = 1`): already reported,
        // so the region falls back to the file's.
        const toml::node* node = &root_;
        std::string dotted;
        for (const std::string& part : path) {
            node = child(node, part.c_str());
            if (!dotted.empty()) dotted += '.';
            dotted += part;
        }
        const toml::node* value_node = child(node, key);
        const toml::source_region& region = value_node ? value_node->source() : root_.source();
        diagnostics_.push_back({file_ + ":" + std::to_string(region.begin.line) + ":" +
                                    std::to_string(region.begin.column),
                                dotted + "." + key,
                                "names database \"" + value + "\", which is not configured"});
    }

    static const toml::node* child(const toml::node* node, const char* key) {
        const toml::table* table = node ? node->as_table() : nullptr;
        return table ? table->get(key) : nullptr;
    }

    const toml::table& root_;
    const std::string& file_;
    Config config_;
    std::vector<Diagnostic> diagnostics_;
};

std::string read_file(const std::string& path) {
    auto refuse = [&](const std::string& why) {
        return ConfigError({{path, "", "cannot read the config file: " + why}});
    };
    // A directory opens, and reads as nothing: that must not mean "the defaults".
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) throw refuse("it is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw refuse(std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw refuse(std::strerror(errno));
    return text.str();
}

}  // namespace

EnvLookup process_environment() {
    return [](const char* name) -> std::optional<std::string> {
        const char* value = std::getenv(name);
        if (!value) return std::nullopt;
        return std::string(value);
    };
}

void ConfigLoader::size_pools(Config& config) {
    for (auto& [name, db] : config.databases)
        if (db.pool_size == 0) db.pool_size = config.worker.threads;
}

Config ConfigLoader::load_file(const std::string& path) {
    return load_string(read_file(path), path);
}

Config ConfigLoader::load_string(std::string_view text, const std::string& source_name) {
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        const auto& begin = e.source().begin;
        throw ConfigError({{source_name + ":" + std::to_string(begin.line) + ":" +
                                std::to_string(begin.column),
                            "", "malformed TOML: " + std::string(e.description())}});
    }
    return FileParser(root, source_name).parse();
}

}  // namespace dbsup
