// Values in and rows out of a statement. Parameters are always bound, never
// spliced into SQL: write $1, $2, ... in statements on both backends.
// Row::get<T>() converts a column to the type the caller asks for and throws a
// usage Error naming the column when it cannot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace dbsup {

using Value = std::variant<std::nullptr_t, std::int64_t, double, std::string>;
using Params = std::vector<Value>;

/// Params from values, for a coroutine: GCC 12 cannot compile a braced list
/// inside a co_await expression (`co_await s.execute(sql, {1, "x"})`), so
/// write `co_await s.execute(sql, params_of(1, "x"))`.
template <class... Args>
Params params_of(Args&&... args) {
    Params params;
    params.reserve(sizeof...(Args));
    (params.emplace_back(std::forward<Args>(args)), ...);
    return params;
}

/// A value as the text PostgreSQL reads for a parameter (doubles exactly).
/// @throws Error(usage) for NULL, which has no text.
std::string value_text(const Value& v);
/// `text` between two `quote` characters, with the quote and backslash escaped by
/// a backslash: libpq's keyword values ('), PostgreSQL's array elements (").
std::string backslash_quoted(std::string_view text, char quote);

class Row {
public:
    explicit Row(std::vector<Value> values) : values_(std::move(values)) {}

    std::size_t size() const noexcept { return values_.size(); }
    const Value& operator[](std::size_t column) const { return values_.at(column); }
    bool is_null(std::size_t column) const;

    /// The column as T (std::int64_t, int, double, bool or std::string).
    /// @throws Error(usage) when it is NULL or cannot be converted.
    template <class T>
    T get(std::size_t column) const;
    /// As get<T>(), but NULL gives nullopt.
    template <class T>
    std::optional<T> get_optional(std::size_t column) const {
        if (is_null(column)) return std::nullopt;
        return get<T>(column);
    }

private:
    std::vector<Value> values_;
};

template <>
std::int64_t Row::get<std::int64_t>(std::size_t column) const;
template <>
int Row::get<int>(std::size_t column) const;
template <>
double Row::get<double>(std::size_t column) const;
template <>
bool Row::get<bool>(std::size_t column) const;
template <>
std::string Row::get<std::string>(std::size_t column) const;

struct Result {
    std::vector<std::string> columns;
    std::vector<Row> rows;
    std::int64_t affected_rows = 0;

    bool empty() const noexcept { return rows.empty(); }
    std::size_t size() const noexcept { return rows.size(); }
    const Row& operator[](std::size_t i) const { return rows.at(i); }
    /// The first column of the first row. @throws Error(usage) when there is none.
    template <class T>
    T scalar() const;
};

template <class T>
T Result::scalar() const {
    if (rows.empty() || rows.front().size() == 0) return Row({}).get<T>(0);
    return rows.front().get<T>(0);
}

}  // namespace dbsup
