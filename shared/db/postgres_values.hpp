// What both PostgreSQL connections (libpqxx's blocking one and the async one
// on raw libpq) must agree on: how an error's SQLSTATE maps to an ErrorCode,
// how a column's text becomes a Value, how parameters travel, and how a
// prepared statement is named.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shared/db/result.hpp"
#include "shared/errors.hpp"

namespace dbsup {

/// A prepared statement whose result columns changed with the schema (0A000).
bool postgres_stale_plan(std::string_view sqlstate, std::string_view message);
/// "prepared statement "dbsup_…" does not exist" (26000) or "already exists"
/// (42P05): our named statements met a server connection that is not the one
/// they were prepared on, which only a transaction pooler does.
bool postgres_lost_statement(std::string_view sqlstate, std::string_view message);
ErrorCode postgres_error_code(std::string_view sqlstate, std::string_view message);

/// A column's text as the Value its type OID calls for (int8/int4/int2/oid as
/// integers, float4/8 as doubles, bool as 0/1, the rest as text).
Value postgres_value(const char* text, std::size_t length, unsigned type_oid);

/// FNV-1a of the text: a statement's name follows from its SQL, so a name met
/// on a server connection shared through a pooler can never stand for other SQL.
std::string postgres_statement_name(std::string_view sql);

/// The first keyword of a statement, upper-cased ("BEGIN", "COMMIT", ...).
std::string first_sql_word(std::string_view sql);

/// What a lost connection says, whatever libpq's words for it.
std::string postgres_lost_message(std::string why);

/// Parameters as libpq takes them: text, and a null pointer for NULL.
struct PostgresParams {
    explicit PostgresParams(const Params& params);
    PostgresParams(const PostgresParams&) = delete;
    PostgresParams& operator=(const PostgresParams&) = delete;
    std::vector<std::string> storage;
    std::vector<const char*> pointers;
};

}  // namespace dbsup
