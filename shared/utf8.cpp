#include "shared/utf8.hpp"

namespace dbsup::utf8 {

std::size_t char_length(std::string_view text) noexcept {
    if (text.empty()) return 0;
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(0);
    if (lead < 0x80) return 1;
    std::size_t n;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        n = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        n = 3;
        if (lead == 0xE0) low = 0xA0;   // overlong
        if (lead == 0xED) high = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        n = 4;
        if (lead == 0xF0) low = 0x90;   // overlong
        if (lead == 0xF4) high = 0x8F;  // beyond U+10FFFF
    } else {
        return 0;
    }
    if (text.size() < n || byte(1) < low || byte(1) > high) return 0;
    for (std::size_t i = 2; i < n; ++i)
        if ((byte(i) & 0xC0) != 0x80) return 0;
    return n;
}

std::size_t cut(std::string_view text, std::size_t max_bytes) noexcept {
    if (text.size() <= max_bytes) return text.size();
    std::size_t end = max_bytes;
    // Back over continuation bytes to the start of the character split.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return end;
}

bool valid(std::string_view text) noexcept {
    for (std::size_t i = 0; i < text.size();) {
        std::size_t n = char_length(text.substr(i));
        if (n == 0) return false;
        i += n;
    }
    return true;
}

}  // namespace dbsup::utf8
