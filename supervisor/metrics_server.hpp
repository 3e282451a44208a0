// `--metrics-listen [HOST:]PORT`: a small HTTP server (Boost.Beast) on the
// supervisor's event loop. GET /metrics answers the same Prometheus text as
// the .prom file; GET /healthz answers 200 while the supervisor runs with
// workers alive and every required database healthy, else 503 saying why.
// Loopback unless a host is given. At most 32 connections at once, 8 KiB of
// request header, 5 s per exchange. Single-threaded: it lives on the
// supervisor's io_context, so nothing it reads needs a lock.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

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
    std::string address() const;

private:
    void accept();

    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    bool accept_error_logged_ = false;
    std::shared_ptr<Pages> pages_ = std::make_shared<Pages>();
    std::shared_ptr<std::size_t> open_ = std::make_shared<std::size_t>(0);
};

}  // namespace dbsup
