// The segment is sized once, by the supervisor, before any worker exists: no
// allocation ever happens inside it afterwards (STYLE point 8).
#include "shared/metrics/shm_segment.hpp"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <cstring>
#include <new>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

namespace dbsup {
namespace bip = boost::interprocess;

namespace {

constexpr std::size_t header_bytes() {
    // Slots start on a cache line so neighbouring workers do not share one.
    return (sizeof(ShmHeader) + 63) / 64 * 64;
}
constexpr std::size_t slot_bytes() { return (sizeof(ShmWorkerSlot) + 63) / 64 * 64; }

[[noreturn]] void fail(const std::string& name, const std::string& why) {
    throw std::runtime_error("shared memory segment '" + name + "': " + why);
}

}  // namespace

struct ShmSegment::Mapping {
    bip::shared_memory_object object;
    bip::mapped_region region;
};

ShmSegment::ShmSegment(std::string name, std::unique_ptr<Mapping> mapping, std::size_t slots,
                       bool owner)
    : name_(std::move(name)), mapping_(std::move(mapping)), slot_count_(slots), owner_(owner) {}

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : name_(std::move(other.name_)),
      mapping_(std::move(other.mapping_)),
      slot_count_(other.slot_count_),
      owner_(other.owner_) {
    other.owner_ = false;
}

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
    if (this != &other) {
        this->~ShmSegment();
        new (this) ShmSegment(std::move(other));
    }
    return *this;
}

ShmSegment::~ShmSegment() {
    mapping_.reset();
    if (owner_) bip::shared_memory_object::remove(name_.c_str());
}

bool ShmSegment::process_alive(std::uint64_t pid) {
    if (pid == 0 || pid > static_cast<std::uint64_t>(std::numeric_limits<pid_t>::max()))
        return false;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
    // A zombie answers kill() but runs nothing: an unreaped worker of a killed
    // supervisor is one until init reaps it. Its state is the field after the
    // parenthesised name in /proc/<pid>/stat.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    return close == std::string::npos || close + 2 >= text.size() || text[close + 2] != 'Z';
}

std::string ShmSegment::name_for(pid_t supervisor_pid) {
    return "dbsup-" + std::to_string(supervisor_pid);
}

bool ShmSegment::remove_if_stale(const std::string& name, const StaleReader& read) {
    std::uint64_t pid = 0;
    try {
        bip::shared_memory_object object(bip::open_only, name.c_str(), bip::read_only);
        bip::offset_t size = 0;
        if (object.get_size(size) && static_cast<std::size_t>(size) >= sizeof(ShmHeader)) {
            bip::mapped_region region(object, bip::read_only, 0, sizeof(ShmHeader));
            pid = static_cast<const ShmHeader*>(region.get_address())->supervisor_pid.load();
        }
    } catch (const bip::interprocess_exception&) {
        return false;  // no such segment
    }
    if (process_alive(pid)) return false;
    // A segment being created has no pid in its header yet: the pid in its
    // name ("dbsup-<pid>") is its creator, and a live creator keeps it.
    std::string digits = name.substr(name.rfind('-') + 1);
    if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos &&
        digits.size() < 10) {
        auto creator = static_cast<std::uint64_t>(std::stoul(digits));
        if (creator != static_cast<std::uint64_t>(getpid()) && process_alive(creator)) return false;
    }
    if (read) {
        try {
            read(attach(name));
        } catch (const std::exception&) {
            // Half made, or of another layout version: nothing to read in it.
        }
    }
    return bip::shared_memory_object::remove(name.c_str());
}

std::vector<std::string> ShmSegment::list_names() {
    std::vector<std::string> names;
    std::error_code error;
    // POSIX shared memory lives in /dev/shm on Linux; names are "dbsup-<pid>".
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", error)) {
        std::string name = entry.path().filename().string();
        if (name.rfind("dbsup-", 0) != 0 ||
            name.find_first_not_of("0123456789", 6) != std::string::npos || name.size() == 6)
            continue;
        names.push_back(std::move(name));
    }
    return names;
}

std::size_t ShmSegment::remove_stale_segments(const StaleReader& read) {
    std::size_t removed = 0;
    for (const std::string& name : list_names())
        if (remove_if_stale(name, read)) ++removed;
    return removed;
}

ShmSegment ShmSegment::create(const std::string& name, std::size_t slots,
                              std::string_view config) {
    if (slots == 0 || slots > ShmHeader::kMaxWorkers)
        fail(name, "slot count " + std::to_string(slots) + " is outside 1.." +
                       std::to_string(ShmHeader::kMaxWorkers));
    if (config.size() > ShmHeader::kMaxConfigBytes)
        fail(name, "the configuration is larger than " +
                       std::to_string(ShmHeader::kMaxConfigBytes) + " bytes");
    remove_if_stale(name);
    auto mapping = std::make_unique<Mapping>();
    try {
        mapping->object = bip::shared_memory_object(bip::create_only, name.c_str(),
                                                    bip::read_write, bip::permissions(0600));
        // Sparse: Boost's truncate() would fallocate every slot (87 MB, 15 ms).
        const int fd = mapping->object.get_mapping_handle().handle;
        if (::ftruncate(fd, static_cast<off_t>(header_bytes() + slots * slot_bytes())) != 0 ||
            ::posix_fallocate(fd, 0, static_cast<off_t>(header_bytes())) != 0)
            throw bip::interprocess_exception(std::strerror(errno));
        mapping->region = bip::mapped_region(mapping->object, bip::read_write);
    } catch (const bip::interprocess_exception& e) {
        fail(name, std::string("cannot create: ") + e.what() +
                       " (is another supervisor with this pid's segment alive?)");
    }
    auto* base = static_cast<char*>(mapping->region.get_address());
    auto* header = new (base) ShmHeader;
    // Slots are left as truncate() made them, all zero bytes (zero atomics):
    // constructing 256 of them would touch every page of a mostly idle segment.
    std::memcpy(header->config[0].data(), config.data(), config.size());
    header->config_size[0] = config.size();
    header->config_index = 0;
    header->header_size = header_bytes();
    header->slot_size = slot_bytes();
    header->slot_count = slots;
    header->supervisor_pid = static_cast<std::uint64_t>(getpid());
    header->layout_version = ShmHeader::kLayoutVersion;
    header->magic.store(ShmHeader::kMagic, std::memory_order_release);  // last: now valid
    return ShmSegment(name, std::move(mapping), slots, true);
}

ShmSegment ShmSegment::attach(const std::string& name) {
    auto mapping = std::make_unique<Mapping>();
    try {
        mapping->object = bip::shared_memory_object(bip::open_only, name.c_str(), bip::read_write);
        mapping->region = bip::mapped_region(mapping->object, bip::read_write);
    } catch (const bip::interprocess_exception& e) {
        fail(name, std::string("cannot attach: ") + e.what());
    }
    if (mapping->region.get_size() < header_bytes()) fail(name, "too small to hold a header");
    const auto* header = static_cast<const ShmHeader*>(mapping->region.get_address());
    if (header->magic.load(std::memory_order_acquire) != ShmHeader::kMagic)
        fail(name, "not a dbsupervisor segment (bad magic)");
    if (header->layout_version != ShmHeader::kLayoutVersion || header->header_size != header_bytes() ||
        header->slot_size != slot_bytes())
        fail(name, "layout version or sizes differ from this binary's (mixed versions?)");
    std::size_t slots = header->slot_count;
    if (slots > ShmHeader::kMaxWorkers ||
        mapping->region.get_size() < header_bytes() + slots * slot_bytes())
        fail(name, "slot count does not fit the segment");
    return ShmSegment(name, std::move(mapping), slots, false);
}

ShmHeader& ShmSegment::header() const noexcept {
    return *static_cast<ShmHeader*>(mapping_->region.get_address());
}

ShmWorkerSlot& ShmSegment::slot(std::size_t index) const {
    if (index >= slot_count_)
        throw std::out_of_range("slot " + std::to_string(index) + " of " +
                                std::to_string(slot_count_));
    auto* base = static_cast<char*>(mapping_->region.get_address());
    return *reinterpret_cast<ShmWorkerSlot*>(base + header_bytes() + index * slot_bytes());
}

void ShmSegment::reserve_slot(std::size_t index) {
    (void)slot(index);  // bounds check
    const int fd = mapping_->object.get_mapping_handle().handle;
    const int error = ::posix_fallocate(
        fd, static_cast<off_t>(header_bytes() + index * slot_bytes()),
        static_cast<off_t>(slot_bytes()));
    if (error != 0)
        fail(name_, "cannot reserve memory for slot " + std::to_string(index) + ": " +
                        std::strerror(error));
}

std::string ShmSegment::config() const {
    std::size_t i = header().config_index.load(std::memory_order_acquire) & 1;
    std::size_t size = std::min<std::size_t>(header().config_size[i], ShmHeader::kMaxConfigBytes);
    return std::string(header().config[i].data(), size);
}

void ShmSegment::replace_config(std::string_view config) {
    if (config.size() > ShmHeader::kMaxConfigBytes)
        fail(name_, "the configuration is larger than " +
                        std::to_string(ShmHeader::kMaxConfigBytes) + " bytes");
    ShmHeader& h = header();
    std::size_t next = (h.config_index.load(std::memory_order_relaxed) + 1) & 1;
    std::memcpy(h.config[next].data(), config.data(), config.size());
    h.config_size[next].store(config.size(), std::memory_order_relaxed);
    h.config_index.store(next, std::memory_order_release);
}

}  // namespace dbsup
