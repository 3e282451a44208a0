#include "supervisor/metrics_server.hpp"

#include <spdlog/spdlog.h>

#include "supervisor/stats_writer.hpp"

namespace dbsup {
namespace {

// Why /healthz is not 200, or "" when it is.
std::string unhealthy_because(const nlohmann::json& stats) {
    const auto& s = stats["supervisor"];
    if (s["state"] != "running") return "supervisor " + s["state"].get<std::string>();
    if (s["workers_alive"].get<int>() == 0) return "no worker alive";
    for (const auto& [name, h] : stats["health"].items())
        if (!h["ok"].get<bool>() && !h.value("optional", false))
            return "database '" + name + "' unhealthy";
    return "";
}

}  // namespace

MetricsServer::MetricsServer(boost::asio::io_context& io, const std::string& listen)
    : server_(io, "--metrics-listen", listen, 0,
              [this](const HttpRequest& request) { return answer(request); }) {
    spdlog::info("metrics: serving /metrics and /healthz on http://{}", address());
}

void MetricsServer::check_address(const std::string& listen) {
    (void)HttpServer::parse_listen("--metrics-listen", listen);
}

HttpReply MetricsServer::answer(const HttpRequest& request) const {
    if (request.method != "GET" && request.method != "HEAD") return {405, "text/plain", "GET only\n"};
    if (request.target == "/metrics")
        return {200, "text/plain; version=0.0.4; charset=utf-8", pages_->metrics};
    if (request.target == "/healthz")
        return {pages_->healthy ? 200 : 503, "application/json", pages_->health + "\n"};
    return {404, "text/plain", "try /metrics or /healthz\n"};
}

void MetricsServer::update(const nlohmann::json& stats) {
    pages_->metrics = StatsWriter::prometheus(stats);
    const std::string why = unhealthy_because(stats);
    pages_->healthy = why.empty();
    pages_->health = nlohmann::json{{"status", why.empty() ? "ok" : "unhealthy"},
                                    {"reason", why},
                                    {"workers_alive", stats["supervisor"]["workers_alive"]}}
                         .dump();
}

}  // namespace dbsup
