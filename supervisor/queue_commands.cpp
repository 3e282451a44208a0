#include "supervisor/queue_commands.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <stdexcept>

#include "config/duration.hpp"
#include "config/names.hpp"
#include "shared/clock.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/job_json.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "shared/queue/wake_signal.hpp"
#include "supervisor/cli.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {
namespace {

using nlohmann::json;
constexpr std::size_t kJobsPerTransaction = 20000;

Session& queue_session(const Config& config) {
    DatabaseManager::instance().init_worker(config.databases, "dbsupervisor/cli");
    return DatabaseManager::instance().session(config.queue.database);
}

// Enqueuing creates or upgrades the queue's tables first, as init-db would.
Session& migrated_queue_session(const Config& config) {
    Session& session = queue_session(config);
    QueueSchema::migrate(session);
    return session;
}

int usage_error(const std::string& message) {
    std::cerr << "error: " << message << "\n";
    return kExitUsage;
}

std::int64_t parse_run_at_ms(const std::string& text) {
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos)
        return std::stoll(text) * 1000;
    std::tm tm{};
    const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end != '\0' && std::string(end) != "Z"))
        throw std::invalid_argument("--run-at '" + text +
                                    "': expected UTC like 2026-11-22T12:00:00Z or epoch seconds");
    return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

// A JSON Lines input read whole: its non-blank lines, by offset into the text.
// One string and two offsets per line cost far less than a NewJob per line,
// which also had to be copied each time the list grew (a tenth of the time).
struct JsonLines {
    std::string text;
    std::vector<std::pair<std::size_t, std::size_t>> lines;  // offset, length
    std::string_view line(std::size_t i) const {
        return std::string_view(text).substr(lines[i].first, lines[i].second);
    }
};

// Every line is checked before anything is inserted: a bad line is reported
// with its number and nothing of the file is enqueued.
JsonLines read_jsonl(std::istream& in, const std::string& source) {
    JsonLines input;
    std::ostringstream whole;
    whole << in.rdbuf();
    input.text = std::move(whole).str();
    const std::string_view text = input.text;
    std::size_t number = 0;
    for (std::size_t at = 0; at < text.size(); ++number) {
        const std::size_t end = std::min(text.find('\n', at), text.size());
        const std::string_view line = text.substr(at, end - at);
        const std::size_t offset = at;
        at = end + 1;
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string_view::npos) continue;
        if (line[first] != '{' || !json::accept(line))  // a JSON text opening with { is an object
            throw std::invalid_argument(source + ":" + std::to_string(number + 1) +
                                        ": not a JSON object: " +
                                        std::string(line.substr(0, 80)) +
                                        " (nothing was enqueued)");
        input.lines.emplace_back(offset, line.size());
    }
    return input;
}

// The queue of `config` on the clock of its database (see Queue::sync_clock),
// with `base` due after `delay_ms` on that clock when one is given.
Queue synced_queue(const Config& config, Session& session, NewJob& base,
                   std::optional<std::int64_t> delay_ms) {
    Queue queue = Queue::from_config(config);
    queue.sync_clock(session);
    if (delay_ms) base.run_at_ms = queue.db_now() + *delay_ms;
    return queue;
}

void insert_with_progress(const Config& config, Session& session, NewJob base,
                          std::optional<std::int64_t> delay_ms, const JsonLines& input) {
    Queue queue = synced_queue(config, session, base, delay_ms);
    const bool terminal = ::isatty(STDERR_FILENO) == 1;
    const std::size_t total = input.lines.size();
    std::vector<NewJob> chunk;
    for (std::size_t start = 0; start < total; start += kJobsPerTransaction) {
        chunk.assign(std::min(kJobsPerTransaction, total - start), base);
        for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i].payload = input.line(start + i);
        session.transact([&](Session& s) { queue.enqueue_many(s, chunk); });
        if (terminal)
            std::fprintf(stderr, "\r\033[Kenqueued %zu/%zu", start + chunk.size(), total);
    }
    if (terminal) std::fputc('\n', stderr);
}

int print_jobs(const std::vector<Job>& jobs, bool as_json) {
    if (as_json) {
        json out = json::array();
        for (const Job& j : jobs) out.push_back(job_json(j));
        std::cout << out.dump(2) << "\n";
        return kExitOk;
    }
    std::printf("%-36s  %-16s  %-9s  %8s  %-20s  %s\n", "ID", "TASK", "STATE", "ATTEMPTS",
                "RUN AT", "LAST ERROR");
    for (const Job& j : jobs)
        std::printf("%-36s  %-16s  %-9s  %3lld/%-4lld  %-20s  %s\n", j.id.c_str(), j.task.c_str(),
                    shown_state(j).c_str(), static_cast<long long>(j.attempts),
                    static_cast<long long>(j.max_attempts), job_time_text(j.run_at_ms).c_str(),
                    j.last_error.substr(0, 60).c_str());
    return kExitOk;
}

int print_counts(const Queue& queue, Session& session, bool as_json) {
    auto by_task = queue.counts_by_task(session);
    if (as_json) {
        std::cout << json{{"by_state", queue.counts(session)}, {"by_task", by_task}}.dump(2)
                  << "\n";
        return kExitOk;
    }
    std::printf("%-24s %10s %10s %10s %10s\n", "TASK", "available", "running", "succeeded",
                "dead");
    for (auto& [task, states] : by_task)
        std::printf("%-24s %10lld %10lld %10lld %10lld\n", task.c_str(),
                    static_cast<long long>(states["available"]),
                    static_cast<long long>(states["running"]),
                    static_cast<long long>(states["succeeded"]),
                    static_cast<long long>(states["dead"]));
    return kExitOk;
}

// Pausing needs the queues table (version 5): the schema is brought up to date.
int pause_or_resume(const Config& config, const JobsOptions& o) {
    const bool pause = o.action == "pause";
    if (!is_valid_name(o.queue))
        return usage_error("jobs " + o.action + ": queue name '" + o.queue.substr(0, 80) +
                           "' is not valid: " + kNameRule);
    Session& session = migrated_queue_session(config);
    Queue queue = Queue::from_config(config);
    queue.sync_clock(session);
    session.transact([&](Session& s) { queue.set_paused(s, o.queue, pause); });
    std::cout << "queue '" << o.queue << "' "
              << (pause ? "paused: no supervisor on this database claims its jobs (running "
                          "ones finish) until `jobs resume`"
                        : "resumed")
              << "\n";
    return kExitOk;
}

}  // namespace

int QueueCommands::init_db(const Config& config) {
    Session& session = queue_session(config);
    std::int64_t before = QueueSchema::current_version(session);
    std::int64_t after = QueueSchema::migrate(session);
    std::cout << "queue schema on database '" << config.queue.database << "': version " << after
              << (before == after ? " (already up to date)" : " (created or upgraded)") << "\n";
    return kExitOk;
}

int QueueCommands::enqueue(const Config& config, const EnqueueOptions& o,
                           const TaskRegistrar& register_tasks) {
    TaskRegistry tasks = TaskRegistry::build(config, register_tasks);
    if (!tasks.contains(o.task))
        return usage_error("unknown task '" + o.task +
                           "': define [tasks." + o.task + "] or use noop, sleep, demo");
    NewJob base;
    base.task = o.task;
    base.payload = o.payload;
    base.queue = o.queue;
    base.priority = o.priority;
    base.max_attempts = o.max_attempts;
    base.unique_key = o.unique_key;
    try {
        std::optional<std::int64_t> delay_ms;
        if (o.delay) delay_ms = parse_duration_ms(*o.delay);
        if (o.unique_for) base.unique_for_ms = parse_duration_ms(*o.unique_for);
        if (o.run_at) base.run_at_ms = parse_run_at_ms(*o.run_at);
        if (!o.jsonl) {
            json parsed = json::parse(o.payload, nullptr, false);
            if (parsed.is_discarded() || !parsed.is_object())
                return usage_error("--payload: not a JSON object: " + o.payload.substr(0, 80));
            Session& session = migrated_queue_session(config);
            Queue queue = synced_queue(config, session, base, delay_ms);
            const Enqueued job =
                session.transact([&](Session& s) { return queue.enqueue_unique(s, base); });
            std::cout << job.id << std::endl;  // before the note on stderr
            if (job.duplicate)
                std::cerr << "already queued: job " << job.id << " holds unique key '"
                          << base.unique_key << "'; nothing was added\n";
            return kExitOk;
        }
        JsonLines input;
        if (*o.jsonl == "-") {
            input = read_jsonl(std::cin, "stdin");
        } else {
            std::ifstream in(*o.jsonl);
            if (!in) return usage_error(*o.jsonl + ": cannot read the file");
            input = read_jsonl(in, *o.jsonl);
        }
        insert_with_progress(config, migrated_queue_session(config), base, delay_ms, input);
        std::cout << "enqueued " << input.lines.size() << " jobs\n";
        return kExitOk;
    } catch (const std::invalid_argument& e) {
        return usage_error(e.what());
    }
}

int QueueCommands::jobs(const Config& config, const JobsOptions& o) {
    if (o.action == "pause" || o.action == "resume") return pause_or_resume(config, o);
    Session& session = queue_session(config);
    if (QueueSchema::current_version(session) == 0)
        throw std::runtime_error("database '" + config.queue.database +
                                 "' has no queue tables yet: run dbsupervisor init-db");
    QueueSchema::migrate(session);  // an older schema lacks what these commands read
    Queue queue = Queue::from_config(config);
    queue.sync_clock(session);  // retry makes jobs due now, on the database's clock
    if (o.action == "list") return print_jobs(queue.list(session, o.state, o.task, o.limit), o.json);
    if (o.action == "counts") return print_counts(queue, session, o.json);
    if (o.action == "retry" && o.all_dead) {
        std::cout << queue.retry_all_dead(session) << " dead job(s) made available again\n";
        return kExitOk;
    }
    if (o.id.empty()) return usage_error("jobs " + o.action + ": give a job ID");
    if (o.action == "show") {
        std::optional<Job> job = queue.find(session, o.id);
        if (!job) throw std::runtime_error("no job with id " + o.id);
        std::cout << job_json(*job).dump(2) << "\n";
        return kExitOk;
    }
    if (o.action == "retry") {
        if (!queue.retry(session, o.id))
            throw std::runtime_error("job " + o.id + " is not dead or available (or does not exist)");
        std::cout << "job " << o.id << " is available again\n";
        return kExitOk;
    }
    switch (queue.cancel(session, o.id)) {
        case Queue::Cancel::cancelled: std::cout << "job " << o.id << " cancelled\n"; break;
        case Queue::Cancel::requested:
            WakeSignal::announce_cancel_local();  // PostgreSQL's NOTIFY reaches other hosts
            std::cout << "job " << o.id << " is running: its worker stops it, and it ends "
                                           "cancelled (not retried)\n";
            break;
        case Queue::Cancel::none:
            throw std::runtime_error("job " + o.id +
                                     " is neither waiting nor running (or does not exist)");
    }
    return kExitOk;
}

}  // namespace dbsup
