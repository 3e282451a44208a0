#include "supervisor/dashboard_server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "config/names.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/job_json.hpp"
#include "shared/queue/wake_signal.hpp"
#include "supervisor/dashboard_page.hpp"

namespace dbsup {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxBody = 1024;  // actions carry no body worth more
constexpr std::int64_t kMaxRunning = 200;

HttpReply json_reply(int status, const json& body) {
    return {status, "application/json",
            body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"};
}

HttpReply error_reply(int status, const std::string& message) {
    return json_reply(status, {{"error", message}});
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

std::string url_decoded(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out += ' ';
        } else if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 &&
                   hex_digit(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

// The value of `name` in "a=1&b=2", decoded; "" when absent.
std::string query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const std::string_view pair = query.substr(0, query.find('&'));
        query.remove_prefix(std::min(query.size(), pair.size() + 1));
        const auto eq = pair.find('=');
        if (url_decoded(pair.substr(0, eq)) == name)
            return eq == std::string_view::npos ? "" : url_decoded(pair.substr(eq + 1));
    }
    return "";
}

bool is_job_id(std::string_view id) {
    return !id.empty() && id.size() <= 64 &&
           std::all_of(id.begin(), id.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == '-'; });
}

// Compares without stopping at the first difference, so timing tells nothing.
bool same_secret(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

bool is_page(const std::string& path) {
    return path == "/" || path == "/workers" || path == "/jobs" || path == "/tasks" ||
           (path.rfind("/jobs/", 0) == 0 && is_job_id(path.substr(6)));
}

}  // namespace

DashboardServer::DashboardServer(const Config& config, Options options)
    : config_(config),
      options_(std::move(options)),
      queue_(Queue::from_config(config)),
      server_(io_, "--dashboard", options_.listen, kMaxBody,
              [this](const HttpRequest& request) { return answer(request); }) {
    thread_ = std::thread([this] { io_.run(); });
    spdlog::info("dashboard: http://{}/ ({})", address(),
                 options_.actions ? "actions enabled, with the token" : "read-only");
}

DashboardServer::~DashboardServer() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
}

Session& DashboardServer::session() {
    if (!session_)
        session_ = DatabaseManager::instance().dedicated_session(config_.queue.database, "dashboard",
                                                                 kStatementTimeoutMs);
    return *session_;
}

void DashboardServer::check_address(const std::string& listen) {
    (void)HttpServer::parse_listen("--dashboard", listen);
}

void DashboardServer::update(const nlohmann::json& stats) {
    using namespace std::chrono;
    const auto& jobs = stats["jobs"];
    json point = {duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count(),
                  jobs.value("succeeded_total", 0), jobs.value("retried_total", 0),
                  jobs.value("dead_total", 0)};
    std::lock_guard lock(mutex_);
    stats_ = stats;
    history_.push_back(std::move(point));
    if (history_.size() > kHistory) history_.pop_front();
}

json DashboardServer::overview() const {
    std::lock_guard lock(mutex_);
    return {{"stats", stats_}, {"history", history_}, {"actions", options_.actions}};
}

HttpReply DashboardServer::answer(const HttpRequest& request) {
    const auto question = request.target.find('?');
    const std::string path = request.target.substr(0, question);
    const std::string query =
        question == std::string::npos ? "" : request.target.substr(question + 1);
    if (request.method == "POST" && path.rfind("/api/", 0) == 0) return api_action(request, path);
    if (request.method != "GET" && request.method != "HEAD")
        return error_reply(405, "GET, or POST for actions");
    if (is_page(path)) return {200, "text/html; charset=utf-8", std::string(dashboard_page())};
    if (path.rfind("/api/", 0) == 0) return api_get(path, query);
    return error_reply(404, "no such page");
}

HttpReply DashboardServer::api_get(const std::string& path, const std::string& query) {
    if (path == "/api/overview") return json_reply(200, overview());  // from memory
    const auto now = std::chrono::steady_clock::now();
    const std::string key = path + "?" + query;
    if (auto it = cache_.find(key); it != cache_.end() && now < it->second.until)
        return it->second.reply;
    HttpReply reply = api_query(path, query);
    if (cache_.size() >= kCacheEntries) cache_.clear();
    cache_[key] = {now + kCacheFor, reply};
    return reply;
}

HttpReply DashboardServer::api_query(const std::string& path, const std::string& query) {
    if (path == "/api/jobs") {
        const std::string state = query_param(query, "state"), task = query_param(query, "task"),
                          queue = query_param(query, "queue");
        if (!state.empty() && state != "available" && state != "running" &&
            state != "succeeded" && state != "dead")
            return error_reply(400, "state: one of available, running, succeeded, dead");
        std::int64_t page = 0;
        try {
            const std::string p = query_param(query, "page");
            page = p.empty() ? 0 : std::clamp<std::int64_t>(std::stoll(p), 0, 100000);
        } catch (const std::exception&) {
            return error_reply(400, "page: a number");
        }
        json jobs = json::array();
        for (const Job& j : queue_.list(session(), state, task, kPageSize + 1, queue,
                                        page * kPageSize))
            jobs.push_back(job_json(j));
        const bool more = jobs.size() > static_cast<std::size_t>(kPageSize);
        if (more) jobs.erase(jobs.end() - 1);
        return json_reply(200, {{"jobs", jobs}, {"page", page}, {"more", more}});
    }
    if (path == "/api/running") {
        json jobs = json::array();
        for (const Job& j : queue_.list(session(), "running", "", kMaxRunning))
            jobs.push_back(job_json(j));
        return json_reply(200, {{"jobs", jobs}});
    }
    if (path.rfind("/api/jobs/", 0) == 0 && is_job_id(path.substr(10))) {
        std::optional<Job> job = queue_.find(session(), path.substr(10));
        return job ? json_reply(200, job_json(*job)) : error_reply(404, "no such job");
    }
    return error_reply(404, "no such API");
}

std::string DashboardServer::refusal(const HttpRequest& request) const {
    if (!options_.actions) return "actions are off: start with --dashboard-actions";
    const std::string site = request.header("sec-fetch-site");
    if (!site.empty() && site != "same-origin") return "cross-site request";
    const std::string origin = request.header("origin");
    if (!origin.empty() && origin != "http://" + request.header("host")) return "cross-origin request";
    if (!same_secret(request.header("x-dbsup-token"), options_.token)) return "bad or missing token";
    return "";
}

HttpReply DashboardServer::api_action(const HttpRequest& request, const std::string& path) {
    if (std::string why = refusal(request); !why.empty()) {
        spdlog::warn("dashboard: refused POST {}: {}", path.substr(0, 120), why);
        return error_reply(403, why);
    }
    cache_.clear();  // the page shows what the action changed
    Session& db = session();
    queue_.sync_clock(db);  // a retried job is due now on the database's clock
    const std::string rest = path.substr(5);  // after "/api/"
    if (rest.rfind("jobs/", 0) == 0) {
        const auto slash = rest.find('/', 5);
        const std::string id = rest.substr(5, slash == std::string::npos ? slash : slash - 5);
        const std::string verb = slash == std::string::npos ? "" : rest.substr(slash + 1);
        if (!is_job_id(id)) return error_reply(404, "no such job");
        if (verb == "retry")
            return queue_.retry(db, id)
                       ? json_reply(200, {{"message", "job " + id + " is available again"}})
                       : error_reply(409, "job " + id + " is not dead or available");
        if (verb == "cancel") {
            switch (queue_.cancel(db, id)) {
                case Queue::Cancel::cancelled:
                    return json_reply(200, {{"message", "job " + id + " cancelled"}});
                case Queue::Cancel::requested:
                    WakeSignal::announce_cancel_local();
                    return json_reply(200, {{"message", "job " + id + " is running: its worker "
                                                        "stops it, and it ends cancelled"}});
                case Queue::Cancel::none:
                    return error_reply(409, "job " + id + " is neither waiting nor running");
            }
        }
    }
    if (rest.rfind("tasks/", 0) == 0 && rest.size() > 17 &&
        rest.compare(rest.size() - 11, 11, "/retry-dead") == 0) {
        const std::string task = rest.substr(6, rest.size() - 17);
        if (!is_valid_name(task)) return error_reply(404, "no such task");
        const std::size_t n = queue_.retry_all_dead(db, task);
        return json_reply(200, {{"message", std::to_string(n) + " dead job(s) of " + task +
                                                " made available again"}});
    }
    return error_reply(404, "no such action");
}

}  // namespace dbsup
