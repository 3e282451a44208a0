// ConfigLoader::from_environment: the original design's DATABASE_* variables.
// Kept apart from the TOML reader because it shares nothing with it but the result.
#include <charconv>

#include "config/config_error.hpp"
#include "config/config_loader.hpp"

namespace dbsup {
namespace {

std::string ssl_mode(const std::string& value, std::vector<Diagnostic>& diagnostics) {
    if (value == "true" || value == "1" || value == "yes" || value == "on") return "require";
    if (value == "false" || value == "0" || value == "no" || value == "off") return "disable";
    for (const char* mode : {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
        if (value == mode) return value;
    diagnostics.push_back({"environment", "DATABASE_SSL",
                           "expected true, false or an sslmode (disable, allow, prefer, require, "
                           "verify-ca, verify-full), got \"" + value + "\""});
    return "prefer";
}

int port_number(const std::string& value, std::vector<Diagnostic>& diagnostics) {
    int port = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
    if (ec == std::errc{} && end == value.data() + value.size() && port >= 1 && port <= 65535)
        return port;
    diagnostics.push_back({"environment", "DATABASE_PORT",
                           "expected a port number from 1 to 65535, got \"" + value + "\""});
    return 5432;
}

DatabaseUrl postgres_url(const EnvLookup& env, std::vector<Diagnostic>& diagnostics) {
    DatabaseUrl url;
    url.backend = Backend::postgresql;
    url.dbname = env("DATABASE_NAME").value_or("dbsupervisor");
    url.user = env("DATABASE_USER").value_or("");
    url.host = env("DATABASE_HOST").value_or("localhost");
    if (auto port = env("DATABASE_PORT")) url.port = port_number(*port, diagnostics);
    if (auto ssl = env("DATABASE_SSL")) url.params["sslmode"] = ssl_mode(*ssl, diagnostics);
    if (auto password = env("DATABASE_PASSWORD")) url.password = *password;
    return url;
}

}  // namespace

Config ConfigLoader::from_environment(const EnvLookup& env) {
    std::vector<Diagnostic> diagnostics;
    Config config;
    config.source = "environment";
    DatabaseConfig db;
    db.name = "main";
    std::string type = env("DATABASE_TYPE").value_or("sqlite");
    if (type == "postgresql" || type == "postgres") {
        db.url = postgres_url(env, diagnostics);
    } else if (type == "sqlite") {
        db.url.path = env("DATABASE_NAME").value_or("dbsupervisor.db");
        if (db.url.path.empty())
            diagnostics.push_back({"environment", "DATABASE_NAME", "expected a file name"});
    } else {
        diagnostics.push_back({"environment", "DATABASE_TYPE",
                               "expected sqlite or postgresql, got \"" + type + "\""});
    }
    config.databases["main"] = std::move(db);
    if (!diagnostics.empty()) throw ConfigError(std::move(diagnostics));
    size_pools(config);
    return config;
}

}  // namespace dbsup
