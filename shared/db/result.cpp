#include "shared/db/result.hpp"

#include <charconv>
#include <cstdio>

#include "shared/errors.hpp"

namespace dbsup {
namespace {

[[noreturn]] void cannot(std::size_t column, const char* type, const char* why) {
    throw Error(ErrorCode::usage,
                "column " + std::to_string(column) + " cannot be read as " + type + ": " + why);
}

const Value& checked(const std::vector<Value>& values, std::size_t column, const char* type) {
    if (column >= values.size()) cannot(column, type, "no such column");
    if (std::holds_alternative<std::nullptr_t>(values[column])) cannot(column, type, "it is NULL");
    return values[column];
}

template <class Number>
Number parse(const std::string& text, std::size_t column, const char* type) {
    Number value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        cannot(column, type, ("the text \"" + text.substr(0, 40) + "\" is not a number").c_str());
    return value;
}

}  // namespace

std::string value_text(const Value& v) {
    if (auto* s = std::get_if<std::string>(&v)) return *s;
    if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (auto* d = std::get_if<double>(&v)) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.17g", *d);
        return buffer;
    }
    throw Error(ErrorCode::usage, "NULL has no text form");
}

bool Row::is_null(std::size_t column) const {
    return std::holds_alternative<std::nullptr_t>(values_.at(column));
}

template <>
std::int64_t Row::get<std::int64_t>(std::size_t column) const {
    const Value& v = checked(values_, column, "an integer");
    if (auto* i = std::get_if<std::int64_t>(&v)) return *i;
    if (auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
    return parse<std::int64_t>(std::get<std::string>(v), column, "an integer");
}

template <>
int Row::get<int>(std::size_t column) const {
    return static_cast<int>(get<std::int64_t>(column));
}

template <>
double Row::get<double>(std::size_t column) const {
    const Value& v = checked(values_, column, "a number");
    if (auto* d = std::get_if<double>(&v)) return *d;
    if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    return parse<double>(std::get<std::string>(v), column, "a number");
}

template <>
bool Row::get<bool>(std::size_t column) const {
    const Value& v = checked(values_, column, "a boolean");
    if (auto* s = std::get_if<std::string>(&v)) return *s == "t" || *s == "true" || *s == "1";
    return get<std::int64_t>(column) != 0;
}

template <>
std::string Row::get<std::string>(std::size_t column) const {
    const Value& v = checked(values_, column, "text");
    if (auto* s = std::get_if<std::string>(&v)) return *s;
    if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    return std::to_string(std::get<double>(v));
}

std::string backslash_quoted(std::string_view text, char quote) {
    std::string out(1, quote);
    for (char c : text) {
        if (c == quote || c == '\\') out += '\\';
        out += c;
    }
    return out + quote;
}

}  // namespace dbsup
