#include "config/names.hpp"

namespace dbsup {
namespace {

// ASCII only, whatever the process locale says.
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool is_valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 63 || is_digit(name[0]) || name[0] == '-') return false;
    for (char c : name)
        if (!is_letter(c) && !is_digit(c) && c != '_' && c != '-') return false;
    return true;
}

}  // namespace dbsup
