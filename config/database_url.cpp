// Parsing is strict: a URL that is almost right is rejected with what is wrong,
// because a typo here silently pointing at another database is the worst outcome.
#include "config/database_url.hpp"

#include <charconv>
#include <set>
#include <stdexcept>

namespace dbsup {
namespace {

const std::set<std::string> kPostgresParams = {
    "sslmode", "connect_timeout", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"};
const std::set<std::string> kSslModes = {"disable", "allow",     "prefer",
                                         "require", "verify-ca", "verify-full"};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(const std::string& text, const char* what) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
        int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) throw std::invalid_argument(std::string("bad %-escape in ") + what);
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

// The inverse of percent_decode(): every byte but the unreserved ones escaped,
// so whatever a name holds ('?', ':', '@', '/', '%') parses back the same.
std::string percent_encode(const std::string& text) {
    static const char* kHex = "0123456789ABCDEF";
    std::string out;
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        const bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                                (u >= '0' && u <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~';
        if (unreserved) {
            out += c;
        } else {
            out += '%';
            out += kHex[u >> 4];
            out += kHex[u & 15];
        }
    }
    return out;
}

DatabaseUrl parse_sqlite(const std::string& rest) {
    DatabaseUrl url;
    url.backend = Backend::sqlite;
    if (rest == ":memory:" || rest == "///:memory:") {
        url.path = ":memory:";
        return url;
    }
    if (rest.rfind("///", 0) != 0 || rest.size() == 3)
        throw std::invalid_argument(
            "expected sqlite:///relative.db, sqlite:////absolute/path.db or sqlite::memory:");
    url.path = rest.substr(3);  // "////abs" leaves "/abs"
    return url;
}

void parse_query(const std::string& query, DatabaseUrl& url) {
    std::size_t start = 0;
    while (start < query.size()) {
        std::size_t amp = query.find('&', start);
        std::string pair = query.substr(start, amp == std::string::npos ? amp : amp - start);
        start = amp == std::string::npos ? query.size() : amp + 1;
        std::size_t eq = pair.find('=');
        if (eq == std::string::npos || eq == 0)
            throw std::invalid_argument("query parameter '" + pair + "' is not name=value");
        std::string name = pair.substr(0, eq);
        std::string value = percent_decode(pair.substr(eq + 1), "a query parameter");
        if (!kPostgresParams.count(name))
            throw std::invalid_argument("unknown query parameter '" + name +
                                        "' (known: sslmode, connect_timeout, sslrootcert, "
                                        "sslcert, sslkey, target_session_attrs)");
        if (name == "sslmode" && !kSslModes.count(value))
            throw std::invalid_argument("sslmode '" + value +
                                        "' is not one of disable, allow, prefer, require, "
                                        "verify-ca, verify-full");
        url.params[name] = value;
    }
}

void parse_host_port(const std::string& hostport, DatabaseUrl& url) {
    std::size_t colon = hostport.rfind(':');
    std::size_t bracket = hostport.find(']');  // [::1]:5432
    if (colon == std::string::npos || (bracket != std::string::npos && bracket > colon)) {
        if (!hostport.empty()) url.host = hostport;
        return;
    }
    url.host = hostport.substr(0, colon);
    std::string port = hostport.substr(colon + 1);
    int value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value < 1 || value > 65535)
        throw std::invalid_argument("port '" + port + "' is not a number from 1 to 65535");
    url.port = value;
    if (url.host.empty()) url.host = "localhost";
}

DatabaseUrl parse_postgres(const std::string& rest) {
    DatabaseUrl url;
    url.backend = Backend::postgresql;
    if (rest.rfind("//", 0) != 0)
        throw std::invalid_argument("expected postgresql://user@host:port/dbname");
    std::string body = rest.substr(2);
    std::size_t question = body.find('?');
    if (question != std::string::npos) {
        parse_query(body.substr(question + 1), url);
        body.resize(question);
    }
    std::size_t slash = body.find('/');
    std::string authority = body.substr(0, slash);
    url.dbname = slash == std::string::npos ? "" : percent_decode(body.substr(slash + 1), "dbname");
    if (url.dbname.empty()) throw std::invalid_argument("the database name is missing (…/dbname)");
    std::size_t at = authority.rfind('@');
    if (at != std::string::npos) {
        std::string userinfo = authority.substr(0, at);
        if (userinfo.find(':') != std::string::npos)
            throw std::invalid_argument(
                "a password must not be written in the URL; use password_env or password_file");
        url.user = percent_decode(userinfo, "user");
        authority = authority.substr(at + 1);
    }
    parse_host_port(authority, url);
    return url;
}

}  // namespace

const char* to_string(Backend backend) noexcept {
    return backend == Backend::sqlite ? "sqlite" : "postgresql";
}

DatabaseUrl DatabaseUrl::parse(const std::string& text) {
    std::size_t colon = text.find(':');
    if (colon == std::string::npos)
        throw std::invalid_argument("expected a URL such as sqlite:///file.db or postgresql://…");
    std::string scheme = text.substr(0, colon);
    std::string rest = text.substr(colon + 1);
    if (scheme == "sqlite") return parse_sqlite(rest);
    if (scheme == "postgresql" || scheme == "postgres") return parse_postgres(rest);
    throw std::invalid_argument("unknown scheme '" + scheme + "' (expected sqlite or postgresql)");
}

std::string DatabaseUrl::redacted() const {
    if (backend == Backend::sqlite) return is_memory() ? "sqlite::memory:" : "sqlite:///" + path;
    std::string out = "postgresql://";
    if (!user.empty()) out += percent_encode(user) + (password ? ":***@" : "@");
    out += host + ":" + std::to_string(port) + "/" + percent_encode(dbname);
    char sep = '?';
    for (const auto& [name, value] : params) {
        out += sep + name + "=" + percent_encode(value);
        sep = '&';
    }
    return out;
}

}  // namespace dbsup
