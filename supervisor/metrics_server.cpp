#include "supervisor/metrics_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <stdexcept>

#include "supervisor/stats_writer.hpp"

namespace dbsup {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;

tcp::endpoint parse_listen(const std::string& listen) {
    const auto colon = listen.rfind(':');
    const std::string host = colon == std::string::npos ? "127.0.0.1" : listen.substr(0, colon);
    const std::string port = colon == std::string::npos ? listen : listen.substr(colon + 1);
    unsigned value = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535)
        throw std::runtime_error("--metrics-listen '" + listen + "': expected [HOST:]PORT");
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(host, ec);
    if (ec) throw std::runtime_error("--metrics-listen '" + listen + "': '" + host +
                                     "' is not an IP address");
    return {address, static_cast<unsigned short>(value)};
}

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

constexpr std::size_t kMaxConnections = 32;   // beyond: closed at once
constexpr std::uint32_t kMaxHeaderBytes = 8192;  // a GET needs far less; no body at all
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);  // after EMFILE and the like

// One request, one answer, then the connection closes.
class HttpExchange : public std::enable_shared_from_this<HttpExchange> {
public:
    HttpExchange(tcp::socket socket, std::shared_ptr<MetricsServer::Pages> pages,
                 std::shared_ptr<std::size_t> open)
        : stream_(std::move(socket)), pages_(std::move(pages)), open_(std::move(open)) {
        ++*open_;
        parser_.header_limit(kMaxHeaderBytes);
        parser_.body_limit(0);
    }
    ~HttpExchange() { --*open_; }
    HttpExchange(const HttpExchange&) = delete;
    HttpExchange& operator=(const HttpExchange&) = delete;

    void start() {
        stream_.expires_after(std::chrono::seconds(5));  // a silent client is dropped
        http::async_read(stream_, buffer_, parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (!ec) self->answer();
                         });
    }

private:
    void answer() {
        const auto& request = parser_.get();
        const auto target = request.target();
        response_.version(request.version());
        response_.keep_alive(false);
        if (request.method() != http::verb::get && request.method() != http::verb::head) {
            respond(http::status::method_not_allowed, "text/plain", "GET only\n");
        } else if (target == "/metrics") {
            respond(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", pages_->metrics);
        } else if (target == "/healthz") {
            respond(pages_->healthy ? http::status::ok : http::status::service_unavailable,
                    "application/json", pages_->health + "\n");
        } else {
            respond(http::status::not_found, "text/plain", "try /metrics or /healthz\n");
        }
    }

    void respond(http::status status, const char* type, std::string body) {
        response_.result(status);
        response_.set(http::field::content_type, type);
        response_.body() = std::move(body);
        response_.prepare_payload();
        http::async_write(stream_, response_,
                          [self = shared_from_this()](beast::error_code, std::size_t) {
                              beast::error_code ignored;
                              self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    http::request_parser<http::empty_body> parser_;
    http::response<http::string_body> response_;
    std::shared_ptr<MetricsServer::Pages> pages_;
    std::shared_ptr<std::size_t> open_;  // exchanges alive (the loop's thread only)
};

}  // namespace

MetricsServer::MetricsServer(boost::asio::io_context& io, const std::string& listen)
    : acceptor_(io), retry_(io) {
    const tcp::endpoint endpoint = parse_listen(listen);
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("--metrics-listen: cannot listen on " + listen + ": " +
                                     ec.message());
    spdlog::info("metrics: serving /metrics and /healthz on http://{}", address());
    accept();
}

void MetricsServer::check_address(const std::string& listen) { (void)parse_listen(listen); }

std::string MetricsServer::address() const {
    const tcp::endpoint e = acceptor_.local_endpoint();
    return e.address().to_string() + ":" + std::to_string(e.port());
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

void MetricsServer::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (ec) {
            // Out of descriptors (EMFILE) or the like: accepting again at once
            // would fail at once, in a loop that takes the supervisor's CPU.
            if (!accept_error_logged_)
                spdlog::warn("metrics: cannot accept a connection: {}", ec.message());
            accept_error_logged_ = true;
            retry_.expires_after(kAcceptRetry);
            retry_.async_wait([this](boost::system::error_code e) {
                if (!e) accept();
            });
            return;
        }
        accept_error_logged_ = false;
        if (*open_ < kMaxConnections)
            std::make_shared<HttpExchange>(std::move(socket), pages_, open_)->start();
        accept();  // a connection beyond the limit closes with `socket`
    });
}

}  // namespace dbsup
