#include "supervisor/run_command.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>

#include "config/config_error.hpp"
#include "config/password_resolver.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/db/database_verifier.hpp"
#include "shared/db/engine.hpp"
#include "shared/db/pooler_probe.hpp"
#include "shared/errors.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "supervisor/cli.hpp"
#include "supervisor/dashboard_server.hpp"
#include "supervisor/metrics_server.hpp"
#include "supervisor/pidfile.hpp"
#include "supervisor/supervisor.hpp"

namespace dbsup {
namespace {

bool verify(const Config& config) {
    auto statuses = DatabaseVerifier::verify(config, "dbsupervisor/supervisor");
    for (const auto& s : statuses) {
        if (s.ok)
            spdlog::info("database '{}' ok: {} ({}, {:.1f} ms)", s.name, s.url, s.version,
                         s.latency_seconds * 1000);
        else if (s.degraded())
            spdlog::warn("database '{}' degraded (optional): {}: {}", s.name, s.url, s.error);
        else
            spdlog::error("database '{}' unusable: {}: {}", s.name, s.url, s.error);
    }
    return DatabaseVerifier::all_usable(statuses);
}

void check_stats_directory(const std::string& stats_file) {
    std::filesystem::path dir = std::filesystem::path(stats_file).parent_path();
    if (dir.empty()) dir = ".";
    if (!std::filesystem::is_directory(dir) || ::access(dir.c_str(), W_OK) != 0)
        throw ConfigError({{"config", "supervisor.stats_file",
                            "directory " + dir.string() + " does not exist or is not writable"}});
}

// Every worker may open pool_size + max_overflow connections to each database
// (twice in async mode: a sync and an async pool), and one more to the queue's (its housekeeping's own): a PostgreSQL server
// that cannot take that many more is refused up front, instead of failing
// workers one by one under load. Behind a transaction pooler the pooler's own
// limits (max_client_conn, default_pool_size) decide instead: not checked.
void check_connection_capacity(const Config& config, bool dashboard) {
    for (const auto& [name, db] : config.databases) {
        if (db.url.backend != Backend::postgresql || db.transaction_pooled()) continue;
        const std::int64_t housekeeping = name == config.queue.database ? 1 : 0;
        // The supervisor's own LISTEN connection (QueueWaker), and its scheduler's.
        const std::int64_t listener = housekeeping && config.queue.wake == "auto" ? 1 : 0;
        const std::int64_t scheduler = housekeeping && !config.schedules.empty() ? 1 : 0;
        const std::int64_t dashboard_reads = housekeeping && dashboard ? 1 : 0;
        // An async worker has an async pool beside its sync one (its threads
        // beside the loop, and the queue's helpers, use the sync one).
        const std::int64_t pools = config.worker.mode == "async" ? 2 : 1;
        std::int64_t needed =
            config.supervisor.workers * (pools * (db.pool_size + db.max_overflow) + housekeeping) +
            listener + scheduler + dashboard_reads;
        Result r;
        try {
            r = DatabaseManager::instance().transact(name, [](Session& s) {
                return s.execute(
                    "SELECT current_setting('max_connections')::int, "
                    "current_setting('superuser_reserved_connections')::int, (SELECT COUNT(*) "
                    "FROM pg_stat_activity WHERE backend_type = 'client backend')");
            });
        } catch (const Error&) {
            if (db.optional) continue;  // degraded: reported by the verification already
            throw;
        }
        std::int64_t max = r[0].get<std::int64_t>(0), reserved = r[0].get<std::int64_t>(1),
                     used = r[0].get<std::int64_t>(2);
        std::int64_t free = max - reserved - used;
        if (needed > free)
            throw ConfigError({{config.source, "databases." + name + ".pool_size",
                                std::to_string(config.supervisor.workers) + " workers x (" +
                                    (pools > 1 ? "2 pools (sync and async) x (" : "") +
                                    "pool_size " + std::to_string(db.pool_size) +
                                    " + max_overflow " + std::to_string(db.max_overflow) +
                                    (pools > 1 ? ")" : "") +
                                    (housekeeping ? " + 1 housekeeping" : "") + ")" +
                                    (listener ? " + 1 listener" : "") +
                                    (scheduler ? " + 1 scheduler" : "") +
                                    (dashboard_reads ? " + 1 dashboard" : "") + " = " +
                                    std::to_string(needed) +
                                    " connections, but the server takes " + std::to_string(free) +
                                    " more (max_connections " + std::to_string(max) + " - " +
                                    std::to_string(reserved) + " reserved - " +
                                    std::to_string(used) +
                                    " in use): lower --workers or the pool, or raise "
                                    "max_connections"}});
    }
}

// A transaction pooler the config does not name would make every worker fail
// on its prepared statements: refused here, once, naming the setting.
// pooler = "session" says a proxy is known and pools by session.
void check_poolers(const Config& config) {
    for (const auto& [name, db] : config.databases) {
        if (db.url.backend != Backend::postgresql || db.pooler != "none") continue;
        PoolerProbe::Finding finding;
        try {
            finding = PoolerProbe::probe(Engine(db, PasswordResolver::resolve(db),
                                                "dbsupervisor/supervisor"));
        } catch (const Error&) {
            if (db.optional) continue;  // degraded: reported by the verification already
            throw;
        }
        if (finding == PoolerProbe::Finding::proxy)
            spdlog::info("database '{}' is reached through a proxy; if it pools by transaction, "
                         "set pooler = \"transaction\" (pooler = \"session\" silences this)",
                         name);
        if (finding == PoolerProbe::Finding::transaction_pooler)
            throw ConfigError({{config.source, "databases." + name + ".pooler",
                                "database '" + name + "' is reached through a transaction pooler "
                                "such as PgBouncer (two client connections were served by one "
                                "server session): set pooler = \"transaction\", and listen_url "
                                "to a direct connection for instant wake-ups"}});
    }
}

// --no-migrate: several versions run side by side during a rolling deploy, so
// only the operator's init-db changes the schema; an older one is refused.
std::int64_t require_current_schema(const Config& config, Session& session) {
    const std::int64_t version = QueueSchema::current_version(session);
    if (version < QueueSchema::latest_version())
        throw Error(ErrorCode::usage,
                    "the queue schema is at version " + std::to_string(version) +
                        ", this binary needs " + std::to_string(QueueSchema::latest_version()) +
                        " and --no-migrate forbids upgrading it: run `dbsupervisor init-db`",
                    config.queue.database);
    return QueueSchema::migrate(session);  // refuses a newer schema; adds nothing
}

// The queue's tables are created or upgraded before any worker claims a job.
void prepare_queue(const Config& config, std::int64_t demo_jobs, bool migrate, bool dashboard) {
    DatabaseManager::instance().init_worker(config.databases, "dbsupervisor/supervisor");
    check_poolers(config);
    check_connection_capacity(config, dashboard);
    Session& session = DatabaseManager::instance().session(config.queue.database);
    std::int64_t version =
        migrate ? QueueSchema::migrate(session) : require_current_schema(config, session);
    spdlog::info("queue: database '{}', schema version {}", config.queue.database, version);
    if (demo_jobs <= 0) return;
    Queue queue = Queue::from_config(config);
    std::vector<NewJob> jobs(static_cast<std::size_t>(demo_jobs));
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        jobs[i].task = "demo";
        jobs[i].payload = "{\"n\": " + std::to_string(i) + "}";
    }
    session.transact([&](Session& s) { queue.enqueue_many(s, jobs); });
    spdlog::info("queue: {} demo jobs enqueued", demo_jobs);
}

}  // namespace

int RunCommand::run(const Config& config, const RunOptions& options) {
    try {
        if (!options.metrics_listen.empty()) MetricsServer::check_address(options.metrics_listen);
        if (!options.dashboard_listen.empty()) DashboardServer::check_address(options.dashboard_listen);
        if (options.dashboard_actions && options.dashboard_token.size() < 16)
            throw std::runtime_error("--dashboard-actions needs a token of at least 16 characters: "
                                     "set DBSUP_DASHBOARD_TOKEN or give --dashboard-token-file");
    } catch (const std::runtime_error& e) {
        spdlog::error("{}", e.what());
        return kExitUsage;
    }
    check_stats_directory(config.supervisor.stats_file);
    Pidfile pidfile(config.supervisor.pidfile);
    if (!verify(config)) return kExitFailure;
    try {
        prepare_queue(config, options.demo_jobs, options.migrate, !options.dashboard_listen.empty());
    } catch (const Error& e) {
        spdlog::error("queue: {}", e.what());
        return e.code() == ErrorCode::usage ? kExitUsage : kExitFailure;
    }
    Supervisor supervisor(config, options.log, options.reload);
    std::optional<MetricsServer> metrics;
    if (!options.metrics_listen.empty()) {
        try {
            metrics.emplace(supervisor.io(), options.metrics_listen);
        } catch (const std::runtime_error& e) {
            spdlog::error("{}", e.what());
            return kExitUsage;
        }
        supervisor.on_stats([&metrics](const nlohmann::json& doc) { metrics->update(doc); });
    }
    std::optional<DashboardServer> dashboard;
    if (!options.dashboard_listen.empty()) {
        try {
            dashboard.emplace(config, DashboardServer::Options{options.dashboard_listen,
                                                               options.dashboard_actions,
                                                               options.dashboard_token});
        } catch (const std::runtime_error& e) {
            spdlog::error("{}", e.what());
            return kExitUsage;
        }
        supervisor.on_stats([&dashboard](const nlohmann::json& doc) { dashboard->update(doc); });
    }
    return supervisor.run();
}

}  // namespace dbsup
