#include "shared/log_setup.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "shared/json_log_formatter.hpp"

namespace dbsup {
namespace {

// sd-daemon(3)'s SD_ERR .. SD_DEBUG for spdlog's levels.
class JournalPriorityFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        static constexpr char kPriority[] = {'7', '7', '6', '4', '3', '2', '6'};
        const char text[] = {'<', kPriority[static_cast<int>(msg.level)], '>'};
        dest.append(text, text + sizeof text);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JournalPriorityFlag>();
    }
};

std::unique_ptr<spdlog::formatter> make_formatter(const LogOptions& options,
                                                  std::optional<std::size_t> slot) {
    if (options.format == "json") return std::make_unique<JsonLogFormatter>(slot);
    auto text = std::make_unique<spdlog::pattern_formatter>();
    if (options.file.empty() && LogSetup::stderr_is_journal())
        text->add_flag<JournalPriorityFlag>('*').set_pattern("%*%l %v");
    else
        text->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    return text;
}

}  // namespace

bool LogSetup::stderr_is_journal() noexcept {
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat st {};
    if (!stream || ::fstat(STDERR_FILENO, &st) != 0) return false;
    unsigned long long device = 0, inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
    return device == st.st_dev && inode == st.st_ino;
}

void LogSetup::apply(const LogOptions& options, std::optional<std::size_t> slot) {
    auto logger = spdlog::stderr_color_mt("dbsupervisor");
    logger->set_formatter(make_formatter(options, slot));
    logger->set_level(spdlog::level::from_str(options.level));
    spdlog::set_default_logger(logger);
}

}  // namespace dbsup
