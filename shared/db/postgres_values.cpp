#include "shared/db/postgres_values.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>

namespace dbsup {

bool postgres_stale_plan(std::string_view sqlstate, std::string_view message) {
    return sqlstate == "0A000" &&
           message.find("cached plan must not change result type") != std::string_view::npos;
}

bool postgres_lost_statement(std::string_view sqlstate, std::string_view message) {
    return (sqlstate == "26000" || sqlstate == "42P05") &&
           message.find("\"dbsup_") != std::string_view::npos;
}

ErrorCode postgres_error_code(std::string_view state, std::string_view message) {
    if (postgres_stale_plan(state, message) || postgres_lost_statement(state, message))
        return ErrorCode::stale_statement;
    if (state.starts_with("23")) return ErrorCode::constraint_violation;
    if (state == "40001") return ErrorCode::serialization_failure;
    if (state == "40P01") return ErrorCode::deadlock;
    if (state.starts_with("42")) return ErrorCode::syntax;
    if (state == "57014") return ErrorCode::timeout;
    if (state.starts_with("08") || state == "57P01" || state == "57P02")
        return ErrorCode::broken_connection;
    if (state == "53300" || state == "57P03") return ErrorCode::connection_failed;
    return ErrorCode::sql;
}

Value postgres_value(const char* text, std::size_t length, unsigned type_oid) {
    switch (type_oid) {
        case 20:  // int8
        case 21:  // int2
        case 23:  // int4
        case 26: {  // oid
            std::int64_t v = 0;
            std::from_chars(text, text + length, v);
            return v;
        }
        case 700:  // float4
        case 701:  // float8
            return std::strtod(std::string(text, length).c_str(), nullptr);  // NaN, Infinity too
        case 16:  // bool
            return static_cast<std::int64_t>(length > 0 && text[0] == 't' ? 1 : 0);
        default:
            return std::string(text, length);
    }
}

std::string postgres_statement_name(std::string_view sql) {
    std::uint64_t hash = 14695981039346656037ull;
    for (unsigned char c : sql) hash = (hash ^ c) * 1099511628211ull;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
    std::string name = "dbsup_";
    name.append(hex);
    return name;
}

std::string first_sql_word(std::string_view sql) {
    std::string word;
    for (char c : sql) {
        if (std::isalpha(static_cast<unsigned char>(c)))
            word += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        else if (!word.empty() || !std::isspace(static_cast<unsigned char>(c)))
            break;
    }
    return word;
}

std::string postgres_lost_message(std::string why) {
    while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
    return "the connection was lost (the server closed it: restarted, or its backend was "
           "terminated); it is discarded and a new one is opened on the next use. libpq: " +
           why;
}

PostgresParams::PostgresParams(const Params& params) {
    storage.reserve(params.size());  // never reallocated: the pointers stay valid
    pointers.reserve(params.size());
    for (const Value& v : params) {
        if (std::holds_alternative<std::nullptr_t>(v)) {
            pointers.push_back(nullptr);
            continue;
        }
        storage.push_back(value_text(v));
        pointers.push_back(storage.back().c_str());
    }
}

}  // namespace dbsup
