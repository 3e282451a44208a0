#include "config/cron_expression.hpp"

#include <date/tz.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <map>
#include <sstream>
#include <vector>

namespace dbsup {
namespace {

using namespace std::chrono_literals;

constexpr int kSearchDays = 366 * 8;  // a leap day can be eight years away (2096 → 2104)

const std::map<std::string, std::string>& shortcuts() {
    static const std::map<std::string, std::string> map = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    return map;
}

struct FieldSpec {
    const char* name;
    int min;
    int max;
    std::vector<std::string> names;  // names[i] stands for min + i
};

const std::array<FieldSpec, 5>& field_specs() {
    static const std::array<FieldSpec, 5> specs = {{
        {"minute", 0, 59, {}},
        {"hour", 0, 23, {}},
        {"day of month", 1, 31, {}},
        {"month", 1, 12, {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                          "nov", "dec"}},
        {"day of week", 0, 7, {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
    }};
    return specs;
}

class FieldParser {
public:
    FieldParser(const FieldSpec& spec, const std::string& text) : spec_(spec), text_(text) {}

    /// Bit v set for each value v the field allows.
    std::uint64_t parse() const {
        std::uint64_t bits = 0;
        std::stringstream items(text_);
        std::string item;
        bool any = false;
        while (std::getline(items, item, ',')) {
            bits |= parse_item(item);
            any = true;
        }
        if (!any || text_.back() == ',') fail("an empty list item");
        return bits;
    }

private:
    std::uint64_t parse_item(const std::string& item) const {
        if (item.empty()) fail("an empty list item");
        const std::size_t slash = item.find('/');
        const std::string range = item.substr(0, slash);
        int step = 1;
        if (slash != std::string::npos) {
            step = number(item.substr(slash + 1), "step");
            if (step < 1) fail("a step must be 1 or more");
        }
        int low = spec_.min, high = spec_.max;
        if (range != "*") {
            const std::size_t dash = range.find('-');
            low = value(range.substr(0, dash));
            high = dash == std::string::npos ? (slash == std::string::npos ? low : spec_.max)
                                             : value(range.substr(dash + 1));
            if (low > high) fail("'" + range + "' runs backwards");
        }
        std::uint64_t bits = 0;
        for (int v = low; v <= high; v += step) bits |= std::uint64_t{1} << v;
        return bits;
    }

    int value(const std::string& text) const {
        std::string lower;
        for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (std::size_t i = 0; i < spec_.names.size(); ++i)
            if (spec_.names[i] == lower) return spec_.min + static_cast<int>(i);
        const int v = number(text, "value");
        if (v < spec_.min || v > spec_.max)
            fail("'" + text + "' is outside " + std::to_string(spec_.min) + "-" +
                 std::to_string(spec_.max));
        return v;
    }

    int number(const std::string& text, const char* what) const {
        if (text.empty() || text.size() > 3 ||
            text.find_first_not_of("0123456789") != std::string::npos)
            fail("'" + text + "' is not a " + what);
        return std::stoi(text);
    }

    [[noreturn]] void fail(const std::string& why) const {
        throw CronError(std::string(spec_.name) + " field '" + text_ + "': " + why);
    }

    const FieldSpec& spec_;
    const std::string& text_;
};

}  // namespace

CronExpression CronExpression::parse(const std::string& text) {
    std::string fields_text = text;
    if (!text.empty() && text[0] == '@') {
        auto it = shortcuts().find(text);
        if (it == shortcuts().end())
            throw CronError("'" + text + "' is not a shortcut (@yearly, @annually, @monthly, "
                            "@weekly, @daily, @midnight, @hourly)");
        fields_text = it->second;
    }
    std::stringstream in(fields_text);
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    if (fields.size() != 5)
        throw CronError("'" + text + "' has " + std::to_string(fields.size()) +
                        " fields; give five (minute hour day-of-month month day-of-week) or "
                        "a shortcut such as @daily");
    CronExpression cron;
    cron.text_ = text;
    std::array<std::uint64_t, 5> bits{};
    for (std::size_t i = 0; i < 5; ++i) bits[i] = FieldParser(field_specs()[i], fields[i]).parse();
    cron.minutes_ = bits[0];
    cron.hours_ = bits[1];
    cron.days_ = bits[2];
    cron.months_ = bits[3];
    cron.weekdays_ = (bits[4] & 0x7f) | (bits[4] >> 7);  // 7 is Sunday, as 0
    cron.days_restricted_ = fields[2][0] != '*';
    cron.weekdays_restricted_ = fields[4][0] != '*';
    return cron;
}

bool CronExpression::day_matches(std::chrono::sys_days day) const {
    const date::year_month_day ymd{date::sys_days(day.time_since_epoch())};
    if (!months_[static_cast<unsigned>(ymd.month())]) return false;
    const bool dom = days_[static_cast<unsigned>(ymd.day())];
    const bool dow = weekdays_[date::weekday(ymd).c_encoding()];
    if (days_restricted_ && weekdays_restricted_) return dom || dow;
    return dom && dow;
}

std::optional<CronExpression::Minutes> CronExpression::first_in_day(
    std::chrono::sys_days local_day, std::chrono::minutes from, std::chrono::sys_seconds after,
    const date::time_zone& zone) const {
    for (int h = 0; h < 24; ++h) {
        if (!hours_[h]) continue;
        for (int m = 0; m < 60; ++m) {
            const std::chrono::minutes at = std::chrono::hours(h) + std::chrono::minutes(m);
            if (!minutes_[m] || at < from) continue;
            const date::local_time<std::chrono::minutes> local{local_day.time_since_epoch() + at};
            // Ambiguous: `first` is the earlier offset, so the first occurrence.
            // Nonexistent: `first` is the offset before the jump, so past it.
            const date::local_info info = zone.get_info(local);
            const Minutes instant{local.time_since_epoch() -
                                  std::chrono::duration_cast<std::chrono::minutes>(info.first.offset)};
            if (instant > after) return instant;
        }
    }
    return std::nullopt;
}

std::optional<CronExpression::Minutes> CronExpression::next_after(
    std::chrono::sys_seconds after, const date::time_zone& zone) const {
    const auto local = zone.to_local(after);
    const auto start = date::floor<std::chrono::minutes>(local) + 1min;
    const auto first_day = date::floor<date::days>(start);
    const std::chrono::minutes from = start - first_day;
    for (int i = 0; i < kSearchDays; ++i) {
        const std::chrono::sys_days day{first_day.time_since_epoch() + std::chrono::days(i)};
        if (!day_matches(day)) continue;
        // A DST jump can put an early instant of the next day before `after`:
        // first_in_day() checks each against it.
        if (auto found = first_in_day(day, i == 0 ? from : 0min, after, zone)) return found;
    }
    return std::nullopt;
}

}  // namespace dbsup
