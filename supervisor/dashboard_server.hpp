// `--dashboard [HOST:]PORT`: a web dashboard (one static page, embedded in the
// binary, no CDN) and the JSON API it reads, on a thread and io_context of its
// own so that its database reads never hold up the supervisor's loop.
//
//   GET  /  /workers  /jobs  /jobs/ID  /tasks      the page (it routes itself)
//   GET  /api/overview    the latest stats and a ring of recent totals (the chart)
//   GET  /api/jobs?state=&task=&queue=&page=        50 per page, newest first
//   GET  /api/jobs/ID     one job (the shape of `jobs show --json`)
//   GET  /api/running     running jobs, with the worker that runs each
//   POST /api/jobs/ID/retry | /api/jobs/ID/cancel | /api/tasks/NAME/retry-dead
//
// The database is asked at most once a second per distinct API address: the
// answers are kept for kCacheFor (dropped at any action), so however many
// browsers or scripts poll, the queue's database sees a few queries a second.
//
// Read-only unless actions are enabled; an action then needs the token (header
// X-Dbsup-Token) and a same-origin request (Sec-Fetch-Site, Origin against
// Host), else 403 and nothing changes. Every query has a LIMIT and runs on a
// connection of the dashboard's own (PostgreSQL: statements cancelled after
// kStatementTimeoutMs), so the page never takes a connection from the queue's
// pool nor holds its rows long.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "shared/queue/queue.hpp"
#include "supervisor/http_server.hpp"

namespace dbsup {

class DashboardServer {
public:
    struct Options {
        std::string listen;  // [HOST:]PORT, loopback when no host
        bool actions = false;
        std::string token;   // required when actions is true
    };
    /// Points of the chart: one per stats write, the last kHistory.
    static constexpr std::size_t kHistory = 600;
    static constexpr std::int64_t kPageSize = 50;
    static constexpr std::chrono::milliseconds kCacheFor{1000};
    static constexpr std::size_t kCacheEntries = 256;
    static constexpr std::int64_t kStatementTimeoutMs = 2000;

    /// Starts serving. @throws std::runtime_error when it cannot listen.
    DashboardServer(const Config& config, Options options);
    ~DashboardServer();
    DashboardServer(const DashboardServer&) = delete;
    DashboardServer& operator=(const DashboardServer&) = delete;

    static void check_address(const std::string& listen);
    /// From the supervisor's stats document; any thread.
    void update(const nlohmann::json& stats);
    std::string address() const { return server_.address(); }

private:
    HttpReply answer(const HttpRequest& request);
    /// api_query() through the cache.
    HttpReply api_get(const std::string& path, const std::string& query);
    HttpReply api_query(const std::string& path, const std::string& query);
    /// The dashboard thread's own connection, opened on first use.
    Session& session();
    HttpReply api_action(const HttpRequest& request, const std::string& path);
    /// Why an action is refused, or "" when it may go ahead.
    std::string refusal(const HttpRequest& request) const;
    nlohmann::json overview() const;

    Config config_;
    Options options_;
    Queue queue_;
    mutable std::mutex mutex_;  // guards stats_ and history_
    nlohmann::json stats_;
    std::deque<nlohmann::json> history_;  // [epoch ms, succeeded, retried, dead]
    struct Cached {
        std::chrono::steady_clock::time_point until;
        HttpReply reply;
    };
    std::map<std::string, Cached> cache_;  // by target; the dashboard thread's only
    std::unique_ptr<Session> session_;     // the dashboard thread's only
    boost::asio::io_context io_;
    HttpServer server_;
    std::thread thread_;
};

}  // namespace dbsup
