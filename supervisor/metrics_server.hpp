// `--metrics-listen [HOST:]PORT`: GET /metrics answers the same Prometheus text
// as the .prom file; GET /healthz answers 200 while the supervisor runs with
// workers alive and every required database healthy, else 503 saying why.
// Loopback unless a host is given. It lives on the supervisor's io_context
// (HttpServer), so nothing it reads needs a lock.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "supervisor/http_server.hpp"

namespace dbsup {

class MetricsServer {
public:
    /// The pages served, replaced on every stats write.
    struct Pages {
        std::string metrics = "# no stats written yet\n";
        bool healthy = false;
        std::string health = R"({"status": "starting"})";
    };

    /// @throws std::runtime_error naming the address when it cannot listen.
    MetricsServer(boost::asio::io_context& io, const std::string& listen);
    /// Checks a --metrics-listen value without binding. @throws std::runtime_error
    static void check_address(const std::string& listen);
    /// From the supervisor's stats document.
    void update(const nlohmann::json& stats);
    std::string address() const { return server_.address(); }

private:
    HttpReply answer(const HttpRequest& request) const;

    std::shared_ptr<Pages> pages_ = std::make_shared<Pages>();
    HttpServer server_;
};

}  // namespace dbsup
