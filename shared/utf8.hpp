// UTF-8 for text that comes from data (task names, labels): how long a valid
// character is, and where a cut may fall so no character is split.
#pragma once

#include <cstddef>
#include <string_view>

namespace dbsup::utf8 {

/// The length in bytes of the valid UTF-8 character `text` starts with (no
/// overlong forms, no surrogates, at most U+10FFFF); 0 when it is not one.
std::size_t char_length(std::string_view text) noexcept;

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a
/// character boundary (a cut inside a character moves back to its start).
std::size_t cut(std::string_view text, std::size_t max_bytes) noexcept;

/// Whether the whole text is valid UTF-8.
bool valid(std::string_view text) noexcept;

}  // namespace dbsup::utf8
