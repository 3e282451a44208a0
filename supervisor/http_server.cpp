#include "supervisor/http_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <stdexcept>

namespace dbsup {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;

constexpr std::uint32_t kMaxHeaderBytes = 8192;
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);  // after EMFILE and the like

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// One request, one answer, then the connection closes.
class HttpExchange : public std::enable_shared_from_this<HttpExchange> {
public:
    HttpExchange(tcp::socket socket, std::shared_ptr<HttpServer::Handler> handler,
                 std::size_t max_body, std::shared_ptr<std::size_t> open)
        : stream_(std::move(socket)), handler_(std::move(handler)), open_(std::move(open)) {
        ++*open_;
        parser_.header_limit(kMaxHeaderBytes);
        parser_.body_limit(max_body);
    }
    ~HttpExchange() { --*open_; }
    HttpExchange(const HttpExchange&) = delete;
    HttpExchange& operator=(const HttpExchange&) = delete;

    void start() {
        stream_.expires_after(std::chrono::seconds(5));  // a silent client is dropped
        http::async_read(stream_, buffer_, parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (ec == http::error::body_limit)
                                 self->respond({413, "text/plain", "request too large\n"}, 11);
                             else if (!ec)
                                 self->answer();
                         });
    }

private:
    void answer() {
        const auto& request = parser_.get();
        HttpRequest r;
        r.method = std::string(request.method_string());
        r.target = std::string(request.target());
        for (const auto& field : request) r.headers[lower(field.name_string())] = field.value();
        r.body = request.body();
        HttpReply reply;
        try {
            reply = (*handler_)(r);
        } catch (const std::exception& e) {
            spdlog::warn("http: {} {}: {}", r.method, r.target.substr(0, 200), e.what());
            reply = {500, "text/plain", "internal error\n"};
        }
        respond(std::move(reply), request.version());
    }

    void respond(HttpReply reply, unsigned version) {
        response_.version(version);
        response_.keep_alive(false);
        response_.result(static_cast<http::status>(reply.status));
        response_.set(http::field::content_type, reply.content_type);
        response_.set(http::field::cache_control, "no-store");
        response_.set("X-Content-Type-Options", "nosniff");
        response_.body() = std::move(reply.body);
        response_.prepare_payload();
        http::async_write(stream_, response_,
                          [self = shared_from_this()](beast::error_code, std::size_t) {
                              beast::error_code ignored;
                              self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    http::request_parser<http::string_body> parser_;
    http::response<http::string_body> response_;
    std::shared_ptr<HttpServer::Handler> handler_;
    std::shared_ptr<std::size_t> open_;  // exchanges alive (the loop's thread only)
};

}  // namespace

tcp::endpoint HttpServer::parse_listen(const std::string& option, const std::string& listen) {
    const auto colon = listen.rfind(':');
    const std::string host = colon == std::string::npos ? "127.0.0.1" : listen.substr(0, colon);
    const std::string port = colon == std::string::npos ? listen : listen.substr(colon + 1);
    unsigned value = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535)
        throw std::runtime_error(option + " '" + listen + "': expected [HOST:]PORT");
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(host, ec);
    if (ec) throw std::runtime_error(option + " '" + listen + "': '" + host +
                                     "' is not an IP address");
    return {address, static_cast<unsigned short>(value)};
}

HttpServer::HttpServer(boost::asio::io_context& io, const std::string& option,
                       const std::string& listen, std::size_t max_body, Handler handler)
    : acceptor_(io),
      retry_(io),
      option_(option),
      max_body_(max_body),
      handler_(std::make_shared<Handler>(std::move(handler))) {
    const tcp::endpoint endpoint = parse_listen(option, listen);
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error(option + ": cannot listen on " + listen + ": " + ec.message());
    accept();
}

std::string HttpServer::address() const {
    const tcp::endpoint e = acceptor_.local_endpoint();
    return e.address().to_string() + ":" + std::to_string(e.port());
}

void HttpServer::close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
}

void HttpServer::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
        if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
        if (ec) {
            // Out of descriptors (EMFILE) or the like: accepting again at once
            // would fail at once, in a loop that takes the supervisor's CPU.
            if (!accept_error_logged_)
                spdlog::warn("{}: cannot accept a connection: {}", option_, ec.message());
            accept_error_logged_ = true;
            retry_.expires_after(kAcceptRetry);
            retry_.async_wait([this](boost::system::error_code e) {
                if (!e) accept();
            });
            return;
        }
        accept_error_logged_ = false;
        if (*open_ < kMaxConnections)
            std::make_shared<HttpExchange>(std::move(socket), handler_, max_body_, open_)->start();
        accept();  // a connection beyond the limit closes with `socket`
    });
}

}  // namespace dbsup
