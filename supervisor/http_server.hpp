// A small HTTP/1.1 server (Boost.Beast) on a given io_context, for the
// supervisor's endpoints (MetricsServer, DashboardServer): one request per
// connection, answered by a handler called on the loop's thread. Bounded so a
// client can never cost the supervisor much: at most kMaxConnections at once
// (more are closed), 8 KiB of headers, max_body bytes of body, 5 s per exchange.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace dbsup {

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // path and query
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;

    /// The header's value, "" when absent.
    std::string header(const std::string& lower_name) const {
        auto it = headers.find(lower_name);
        return it == headers.end() ? std::string() : it->second;
    }
};

struct HttpReply {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

class HttpServer {
public:
    using Handler = std::function<HttpReply(const HttpRequest&)>;
    static constexpr std::size_t kMaxConnections = 32;

    /// option names the flag in errors ("--metrics-listen").
    /// @throws std::runtime_error naming the address when it cannot listen.
    HttpServer(boost::asio::io_context& io, const std::string& option, const std::string& listen,
               std::size_t max_body, Handler handler);
    /// Checks a [HOST:]PORT value (loopback when no host) without binding.
    /// @throws std::runtime_error
    static boost::asio::ip::tcp::endpoint parse_listen(const std::string& option,
                                                       const std::string& listen);
    /// "127.0.0.1:9100": where it listens.
    std::string address() const;
    /// Stops accepting (connections under way finish); on the loop's thread.
    void close();

private:
    void accept();

    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    std::string option_;
    std::size_t max_body_;
    std::shared_ptr<Handler> handler_;
    bool accept_error_logged_ = false;
    std::shared_ptr<std::size_t> open_ = std::make_shared<std::size_t>(0);
};

}  // namespace dbsup
