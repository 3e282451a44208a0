#include "config/section_reader.hpp"

#include <sstream>

namespace dbsup {
namespace {

const char* type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        default: return "a date/time";
    }
}

}  // namespace

SectionReader::SectionReader(const toml::table& table, std::string path, const std::string& file,
                             std::vector<Diagnostic>& diagnostics)
    : table_(table), path_(std::move(path)), file_(file), diagnostics_(diagnostics) {}

std::string SectionReader::key_path(const char* key) const {
    return path_.empty() ? key : path_ + "." + key;
}

std::string SectionReader::where(const toml::source_region& region) const {
    return file_ + ":" + std::to_string(region.begin.line) + ":" +
           std::to_string(region.begin.column);
}

const toml::node* SectionReader::take(const char* key) {
    used_.insert(key);
    return table_.get(key);
}

void SectionReader::wrong(const char* key, const toml::node& node, const std::string& expected) {
    diagnostics_.push_back(
        {where(node.source()), key_path(key), "expected " + expected + ", got " + type_name(node)});
}

void SectionReader::error(const char* key, const std::string& message) {
    const toml::node* node = table_.get(key);
    diagnostics_.push_back(
        {where(node ? node->source() : table_.source()), key_path(key), message});
}

bool SectionReader::has(const char* key) { return take(key) != nullptr; }

bool SectionReader::require(const char* key) {
    if (table_.contains(key)) return true;
    error(key, "is required but missing");
    return false;
}

void SectionReader::integer(const char* key, std::int64_t& out, std::int64_t min,
                            std::int64_t max) {
    const toml::node* node = take(key);
    if (!node) return;
    std::string expected =
        "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    auto value = node->value_exact<std::int64_t>();
    if (!value) return wrong(key, *node, expected);
    if (*value < min || *value > max)
        return error(key, "expected " + expected + ", got " + std::to_string(*value));
    out = *value;
}

void SectionReader::number(const char* key, double& out, double min, double max) {
    const toml::node* node = take(key);
    if (!node) return;
    std::ostringstream expected;
    expected << "a number from " << min << " to " << max;
    if (!node->is_number()) return wrong(key, *node, expected.str());
    double value = *node->value<double>();
    if (!(value >= min && value <= max)) {  // nan compares false both ways: refused too
        std::ostringstream got;
        got << value;
        return error(key, "expected " + expected.str() + ", got " + got.str());
    }
    out = value;
}

void SectionReader::boolean(const char* key, bool& out) {
    const toml::node* node = take(key);
    if (!node) return;
    if (!node->is_boolean()) return wrong(key, *node, "true or false");
    out = *node->value<bool>();
}

void SectionReader::string(const char* key, std::string& out, bool allow_empty) {
    const toml::node* node = take(key);
    if (!node) return;
    if (!node->is_string()) return wrong(key, *node, "a string");
    std::string value = *node->value<std::string>();
    if (!allow_empty && value.empty()) return error(key, "expected a non-empty string");
    out = std::move(value);
}

void SectionReader::choice(const char* key, std::string& out,
                           std::initializer_list<const char*> allowed) {
    std::string value = out;
    string(key, value);
    std::string names;
    for (const char* name : allowed) {
        if (value == name) {
            out = value;
            return;
        }
        if (!names.empty()) names += ", ";
        names += name;
    }
    error(key, "expected one of " + names + ", got \"" + value + "\"");
}

void SectionReader::string_list(const char* key, std::vector<std::string>& out) {
    const toml::node* node = take(key);
    if (!node) return;
    if (node->is_string()) {
        out = {*node->value<std::string>()};
        return;
    }
    const toml::array* array = node->as_array();
    if (!array || !array->is_homogeneous(toml::node_type::string) || array->empty())
        return wrong(key, *node, "a string or a non-empty array of strings");
    out.clear();
    for (const auto& item : *array) out.push_back(*item.value<std::string>());
}

void SectionReader::integer_pair(const char* key, std::int64_t& low, std::int64_t& high,
                                 std::int64_t min, std::int64_t max) {
    const toml::node* node = take(key);
    if (!node) return;
    std::string expected = "[low, high], two integers from " + std::to_string(min) + " to " +
                           std::to_string(max) + " with low <= high";
    const toml::array* array = node->as_array();
    if (!array || array->size() != 2 || !array->is_homogeneous(toml::node_type::integer))
        return wrong(key, *node, expected);
    std::int64_t a = *array->get(0)->value<std::int64_t>();
    std::int64_t b = *array->get(1)->value<std::int64_t>();
    if (a < min || b > max || a > b)
        return error(key, "expected " + expected + ", got [" + std::to_string(a) + ", " +
                              std::to_string(b) + "]");
    low = a;
    high = b;
}

const toml::table* SectionReader::table(const char* key) {
    const toml::node* node = take(key);
    if (!node) return nullptr;
    if (!node->is_table()) {
        wrong(key, *node, "a table");
        return nullptr;
    }
    return node->as_table();
}

void SectionReader::finish() {
    for (const auto& [key, node] : table_) {
        if (used_.count(key.str())) continue;
        diagnostics_.push_back({where(key.source()), key_path(std::string(key.str()).c_str()),
                                "unknown key (check the spelling; see config/examples/)"});
    }
}

}  // namespace dbsup
