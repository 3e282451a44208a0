#include "supervisor/cli.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "config/config_error.hpp"
#include "config/config_loader.hpp"
#include "supervisor/analyze_command.hpp"
#include "supervisor/check_config_command.hpp"
#include "supervisor/health_command.hpp"
#include "shared/library_versions.hpp"
#include "shared/log_file.hpp"
#include "shared/log_setup.hpp"
#include "supervisor/queue_commands.hpp"
#include "supervisor/schedules_command.hpp"
#include "supervisor/stats_command.hpp"
#include "supervisor/run_command.hpp"
#include "worker/worker_process.hpp"

namespace dbsup {
namespace {

constexpr const char* kSignals =
    "Signals (supervisor): TERM/INT graceful drain; second TERM/INT fast; QUIT immediate;\n"
    "HUP reload; TTIN/TTOU one worker more/fewer; USR1 write stats, reopen\n"
    "the log file.\n"
    "Exit codes: 0 ok, 1 failure (e.g. a database unreachable), 2 bad arguments or\n"
    "configuration.";

// Never from the command line, where ps shows it: a file, or the environment.
std::string dashboard_token(const std::string& file) {
    if (file.empty()) {
        const char* env = std::getenv("DBSUP_DASHBOARD_TOKEN");
        return env ? env : "";
    }
    std::ifstream in(file);
    std::string token;
    if (!in || !std::getline(in, token))
        throw std::runtime_error("--dashboard-token-file " + file + ": cannot read a token from it");
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (token.size() < 16)
        throw std::runtime_error("--dashboard-token-file " + file +
                                 ": the token must have at least 16 characters");
    return token;
}

}  // namespace

Config Cli::load_config(const Overrides& overrides) {
    Config config = overrides.config_path ? ConfigLoader::load_file(*overrides.config_path)
                                          : ConfigLoader::from_environment(process_environment());
    if (overrides.workers) config.supervisor.workers = *overrides.workers;
    if (overrides.stats_file) config.supervisor.stats_file = *overrides.stats_file;
    if (overrides.pidfile) config.supervisor.pidfile = *overrides.pidfile;
    return config;
}

int Cli::run(int argc, char** argv, const TaskRegistrar& register_tasks) {
    CLI::App app{"dbsupervisor: a pre-fork supervisor for database workers.\n" +
                 std::string(kSignals)};
    app.set_version_flag("-V,--version", [] {
        return "dbsupervisor " DBSUP_VERSION "\n" + library_versions();
    });
    Overrides overrides;
    LogOptions log;
    app.add_option("-c,--config", overrides.config_path,
                   "TOML configuration file (default: DATABASE_* environment, else SQLite "
                   "dbsupervisor.db)");
    app.add_option("-w,--workers", overrides.workers, "number of worker processes")
        ->check(CLI::Range(1, 256));
    app.add_option("--stats-file", overrides.stats_file, "where to write the stats JSON");
    app.add_option("--pidfile", overrides.pidfile, "pidfile; refuses a second supervisor");
    app.add_option("--log-level", log.level, "trace, debug, info, warn, error (the last one given wins)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    app.add_option("--log-file", log.file, "append logs to this file (reopened on SIGUSR1)");
    app.add_option("--log-format", log.format,
                   "text (under systemd with <N> priority prefixes for journald) or json "
                   "(one object per line: time, level, message, pid, slot, job fields)")
        ->check(CLI::IsMember({"text", "json"}));

    auto* check = app.add_subcommand("check-config",
                                     "validate the configuration (connects to nothing) and print "
                                     "it resolved, with secrets redacted");
    app.add_subcommand("run", "verify the databases and supervise the workers "
                                          "(the default command)");
    auto* worker = app.add_subcommand("worker", "(internal) a worker process, spawned by run");
    std::string shm_name;
    std::size_t slot = 0;
    std::uint64_t generation = 1;
    worker->add_option("--shm", shm_name, "the supervisor's segment")->required();
    worker->add_option("--slot", slot, "this worker's slot")->required();
    worker->add_option("--generation", generation, "how many times the slot was filled");
    std::string metrics_listen;
    app.add_option("--metrics-listen", metrics_listen,
                   "run: serve /metrics and /healthz over HTTP on [HOST:]PORT (loopback "
                   "unless HOST is given)");
    std::string dashboard_listen, dashboard_token_file;
    bool dashboard_actions = false;
    app.add_option("--dashboard", dashboard_listen,
                   "run: serve the web dashboard on [HOST:]PORT (loopback unless HOST is given)");
    app.add_flag("--dashboard-actions", dashboard_actions,
                 "run: let the dashboard retry and cancel jobs, with the token of "
                 "DBSUP_DASHBOARD_TOKEN or --dashboard-token-file");
    app.add_option("--dashboard-token-file", dashboard_token_file,
                   "run: a file holding the dashboard's token (first line)");
    bool no_migrate = false;
    app.add_flag("--no-migrate", no_migrate,
                 "run: refuse to start on an outdated queue schema instead of upgrading it "
                 "(rolling deploys: upgrade once with init-db)");
    std::int64_t demo_jobs = 0;
    app.add_option("--demo", demo_jobs, "run: enqueue this many demo jobs first")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{100'000'000}));

    auto* init_db = app.add_subcommand("init-db", "create or upgrade the queue tables "
                                                  "(idempotent)");
    EnqueueOptions enq;
    auto* enqueue = app.add_subcommand("enqueue", "add a job (or many, from JSON Lines)");
    enqueue->add_option("task", enq.task, "the task to run")->required();
    enqueue->add_option("--payload", enq.payload, "a JSON object (default {})");
    enqueue->add_option("--queue", enq.queue, "queue name (default: [queue] name)");
    enqueue->add_option("--priority", enq.priority, "lower runs first (default 0)");
    auto* delay = enqueue->add_option("--delay", enq.delay, "run after this long: 500ms, 10s, 5m");
    enqueue->add_option("--run-at", enq.run_at, "run at this UTC time (2026-11-22T12:00:00Z)")
        ->excludes(delay);
    enqueue->add_option("--max-attempts", enq.max_attempts, "default: the task's max_attempts")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1000}));
    auto* jsonl = enqueue->add_option("--jsonl", enq.jsonl,
                                      "one payload per line from FILE, or - for stdin");
    auto* unique_key = enqueue->add_option(
        "--unique-key", enq.unique_key,
        "at most one waiting or running job with this key: a duplicate returns the existing "
        "job's id")->excludes(jsonl);
    enqueue->add_option("--unique-for", enq.unique_for,
                        "the key also covers a job that succeeded this recently: 30s, 10m, 2h")
        ->needs(unique_key);

    JobsOptions jo;
    auto* jobs = app.add_subcommand("jobs", "inspect and repair the queue");
    jobs->require_subcommand(1, 1);
    auto* list = jobs->add_subcommand("list", "newest jobs first");
    list->add_option("--state", jo.state, "available, running, succeeded, dead")
        ->check(CLI::IsMember({"available", "running", "succeeded", "dead"}));
    list->add_option("--task", jo.task, "only this task");
    list->add_option("--limit", jo.limit, "at most this many (default 20)");
    jobs->add_subcommand("show", "one job in full")->add_option("id", jo.id)->required();
    auto* retry = jobs->add_subcommand("retry", "a dead job (or --dead: all) back to available");
    retry->add_option("id", jo.id);
    retry->add_flag("--dead", jo.all_dead, "every dead job");
    jobs->add_subcommand("cancel", "a waiting job ends cancelled; a running one is stopped "
                                   "by its worker and ends cancelled (never retried)")
        ->add_option("id", jo.id)
        ->required();
    jobs->add_subcommand("counts", "jobs by task and state");
    for (CLI::App* sub : jobs->get_subcommands({}))
        sub->add_flag("--json", jo.json, "JSON for scripts");
    jobs->add_subcommand("pause", "stop every supervisor on the database claiming from QUEUE "
                                  "(running jobs finish)")
        ->add_option("queue", jo.queue, "the queue's name")
        ->required();
    jobs->add_subcommand("resume", "let QUEUE's jobs be claimed again")
        ->add_option("queue", jo.queue, "the queue's name")
        ->required();

    bool schedules_json = false;
    auto* schedules = app.add_subcommand("schedules", "each [schedules.NAME] with its last and "
                                                      "next firing (times in UTC)");
    schedules->add_flag("--json", schedules_json, "JSON for scripts");
    std::string stats_path;
    bool stats_json = false, stats_watch = false;
    auto* stats = app.add_subcommand("stats", "the supervisor's stats file as a table");
    stats->add_option("--file", stats_path, "default: --stats-file or [supervisor] stats_file");
    stats->add_flag("--json", stats_json, "print the JSON itself");
    stats->add_flag("--watch", stats_watch, "redraw every second until interrupted");

    bool health_json = false;
    auto* health = app.add_subcommand("health", "check every database now; exit 1 if a "
                                                "required one is unhealthy");
    health->add_flag("--json", health_json, "JSON for scripts");
    AnalyzeOptions an;
    auto* analyze = app.add_subcommand("analyze", "the plan of one statement (PostgreSQL: "
                                                  "EXPLAIN ANALYZE, rolled back)");
    analyze->add_option("--db", an.database, "a configured database (default main)");
    analyze->add_option("sql", an.sql, "the statement, with $1, $2, ... for parameters")
        ->required();
    analyze->add_option("--param", an.params, "binds $1, $2, ... in order (repeatable)");
    analyze->add_flag("--json", an.json, "the plan as JSON");
    app.require_subcommand(0, 1);
    for (CLI::App* sub : app.get_subcommands({})) sub->fallthrough();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }
    try {
        if (!log.file.empty()) LogFile::redirect_stderr(log.file);
    } catch (const std::exception& e) {
        std::cerr << "dbsupervisor: " << e.what() << "\n";
        return kExitUsage;
    }
    LogSetup::apply(log, worker->parsed() ? std::optional<std::size_t>(slot) : std::nullopt);
    try {
        if (check->parsed()) return CheckConfigCommand::run(overrides);
        if (worker->parsed()) return WorkerProcess::run(shm_name, slot, generation, log.file,
                                                        register_tasks);
        if (stats->parsed())
            return StatsCommand::run(
                stats_path.empty() ? load_config(overrides).supervisor.stats_file : stats_path,
                stats_json, stats_watch);
        if (health->parsed()) return HealthCommand::run(load_config(overrides), health_json);
        if (analyze->parsed()) return AnalyzeCommand::run(load_config(overrides), an);
        if (schedules->parsed())
            return SchedulesCommand::run(load_config(overrides), schedules_json);
        if (init_db->parsed()) return QueueCommands::init_db(load_config(overrides));
        if (enqueue->parsed()) return QueueCommands::enqueue(load_config(overrides), enq, register_tasks);
        if (jobs->parsed()) {
            jo.action = jobs->get_subcommands().front()->get_name();
            return QueueCommands::jobs(load_config(overrides), jo);
        }
        const Config config = load_config(overrides);
        if (register_tasks) TaskRegistry::build(config, register_tasks);  // fails here, not per worker
        std::string token;
        try {
            token = dashboard_token(dashboard_token_file);
        } catch (const std::runtime_error& e) {
            std::cerr << "error: " << e.what() << "\n";
            return kExitUsage;
        }
        return RunCommand::run(config,
                               {demo_jobs, log,
                                [overrides] { return load_config(overrides); },
                                metrics_listen, dashboard_listen, dashboard_actions,
                                token, !no_migrate});
    } catch (const ConfigError& e) {
        for (const auto& d : e.diagnostics()) std::cerr << "error: " << d.to_string() << "\n";
        return kExitUsage;
    } catch (const std::exception& e) {
        // One line: PostgreSQL appends the statement and a caret on lines of their own.
        std::string message = e.what();
        std::cerr << "dbsupervisor: " << message.substr(0, message.find('\n')) << "\n";
        return kExitFailure;
    }
}

}  // namespace dbsup
