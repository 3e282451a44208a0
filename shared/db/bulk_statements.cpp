#include "shared/db/bulk_statements.hpp"

#include <cctype>

#include "shared/errors.hpp"

namespace dbsup {
namespace {

bool is_identifier(std::string_view name) {
    if (name.empty() || name.size() > 63 || std::isdigit(static_cast<unsigned char>(name[0])))
        return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
}

}  // namespace

std::string BulkStatements::quote(std::string_view name, std::string_view operation) {
    std::size_t dot = name.find('.');
    std::string_view schema = dot == std::string_view::npos ? "" : name.substr(0, dot);
    std::string_view base = dot == std::string_view::npos ? name : name.substr(dot + 1);
    if (!is_identifier(base) || (dot != std::string_view::npos && !is_identifier(schema)))
        throw Error(ErrorCode::usage,
                    std::string(operation) + ": '" + std::string(name) +
                        "' is not an identifier (letters, digits, _; optionally schema.name)");
    std::string quoted;
    if (!schema.empty()) quoted.append(1, '"').append(schema).append("\".");
    return quoted.append(1, '"').append(base).append(1, '"');
}

BulkStatements::BulkStatements(std::string operation, std::string_view table,
                               std::string_view key_column,
                               const std::vector<std::string>& columns)
    : operation_(std::move(operation)),
      table_(quote(table, operation_)),
      label_(operation_, table, "bulk") {
    if (!key_column.empty()) {
        key_ = quote(key_column, operation_);
        names_.emplace_back(key_column);
    }
    for (const std::string& c : columns) {
        columns_.push_back(quote(c, operation_));
        names_.push_back(c);
    }
    // Insert needs columns, delete only its key, update both.
    const bool needs_columns = key_.empty() || operation_ == "bulk_update";
    if (needs_columns && columns_.empty())
        throw Error(ErrorCode::usage, operation_ + " " + table_ + ": no columns given");
}

void BulkStatements::check_widths(const std::vector<Params>& rows, std::size_t width) const {
    for (std::size_t r = 0; r < rows.size(); ++r)
        if (rows[r].size() != width)
            throw Error(ErrorCode::usage, operation_ + " " + table_ + ": row " +
                                              std::to_string(r + 1) + " has " +
                                              std::to_string(rows[r].size()) +
                                              " values, expected " + std::to_string(width));
}

std::string_view BulkStatements::column_types_query() {
    return "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
           "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped";
}

std::string BulkStatements::postgres_update(
    std::size_t rows, const std::map<std::string, std::string>& types) const {
    std::vector<std::string> casts;
    for (const std::string& name : names_) {
        auto found = types.find(name);
        if (found == types.end())
            throw Error(ErrorCode::usage, operation_ + " " + table_ + ": no column '" + name + "'");
        casts.push_back("::" + found->second);
    }
    std::string sql = "UPDATE " + table_ + " AS t SET ";
    for (std::size_t c = 0; c < columns_.size(); ++c)
        sql += (c ? ", " : "") + columns_[c] + " = v." + columns_[c];
    sql += " FROM (VALUES ";
    std::size_t n = 0;
    for (std::size_t r = 0; r < rows; ++r) {
        sql += r ? ", (" : "(";
        for (std::size_t c = 0; c < casts.size(); ++c)
            sql += (c ? ", $" : "$") + std::to_string(++n) + casts[c];
        sql += ")";
    }
    sql += ") AS v(" + key_;
    for (const std::string& c : columns_) sql += ", " + c;
    return sql + ") WHERE t." + key_ + " = v." + key_;
}

std::string BulkStatements::sqlite_update() const {
    std::string sql = "UPDATE " + table_ + " SET ";
    for (std::size_t c = 0; c < columns_.size(); ++c)
        sql += (c ? ", " : "") + columns_[c] + " = $" + std::to_string(c + 2);
    return sql + " WHERE " + key_ + " = $1";
}

std::string BulkStatements::postgres_delete() const {
    return "DELETE FROM " + table_ + " WHERE " + key_ + " = ANY($1)";
}

std::string BulkStatements::sqlite_delete() const {
    return "DELETE FROM " + table_ + " WHERE " + key_ + " = $1";
}

std::string BulkStatements::array_literal(const std::vector<Value>& keys, std::size_t begin,
                                          std::size_t end) {
    std::string out = "{";
    for (std::size_t i = begin; i < end; ++i) {
        out += i == begin ? "\"" : ",\"";
        if (std::holds_alternative<std::nullptr_t>(keys[i]))
            throw Error(ErrorCode::usage, "bulk_delete: key " + std::to_string(i + 1) + " is NULL");
        for (char c : value_text(keys[i])) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

}  // namespace dbsup
