// The shared-memory segment of one supervisor (Boost.Interprocess
// shared_memory_object + mapped_region, mode 0600). The supervisor create()s it
// (removing a stale one whose supervisor is dead) and removes it when its
// ShmSegment is destroyed; workers attach() and never remove it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "shared/metrics/shm_layout.hpp"

namespace dbsup {

class ShmSegment {
public:
    /// Creates "/name" with `slots` worker slots and the config blob.
    /// @throws std::runtime_error naming the segment when it exists and its
    /// supervisor is alive, or when the system refuses.
    static ShmSegment create(const std::string& name, std::size_t slots, std::string_view config);
    /// Attaches to an existing segment after checking magic, version and sizes.
    /// @throws std::runtime_error naming what does not match.
    static ShmSegment attach(const std::string& name);
    /// Read-only: what a stale segment tells before it goes (see remove_stale_segments).
    using StaleReader = std::function<void(const ShmSegment&)>;
    /// Removes the segment if its recorded supervisor is no longer alive; true
    /// if removed. `read`, when given, sees the segment first (if it attaches).
    static bool remove_if_stale(const std::string& name, const StaleReader& read = {});
    /// Removes every "dbsup-<pid>" segment whose supervisor is dead, each
    /// shown to `read` first (the claims its workers had started, say);
    /// returns how many.
    static std::size_t remove_stale_segments(const StaleReader& read = {});
    /// The names of every "dbsup-<pid>" segment on this host, live or stale.
    static std::vector<std::string> list_names();
    /// Whether `pid` is a running process (a zombie is not).
    static bool process_alive(std::uint64_t pid);
    /// The conventional name of a supervisor's segment: "dbsup-<pid>".
    static std::string name_for(pid_t supervisor_pid);

    ShmSegment(ShmSegment&&) noexcept;
    ShmSegment& operator=(ShmSegment&&) noexcept;
    ~ShmSegment();

    ShmHeader& header() const noexcept;
    /// Slot `index`; @throws std::out_of_range beyond slot_count().
    ShmWorkerSlot& slot(std::size_t index) const;
    std::size_t slot_count() const noexcept { return slot_count_; }
    /// Backs slot `index` with memory (supervisor only, before its worker is
    /// spawned): the segment is created sparse, so 256 mostly unused slots cost
    /// nothing, and a full /dev/shm is an error here instead of a SIGBUS in a
    /// worker. @throws std::runtime_error naming the segment.
    void reserve_slot(std::size_t index);
    std::string config() const;
    /// Publishes a new configuration for workers that start from now on
    /// (supervisor only). @throws std::runtime_error when it is too large.
    void replace_config(std::string_view config);
    const std::string& name() const noexcept { return name_; }

private:
    struct Mapping;
    ShmSegment(std::string name, std::unique_ptr<Mapping> mapping, std::size_t slots, bool owner);

    std::string name_;
    std::unique_ptr<Mapping> mapping_;
    std::size_t slot_count_ = 0;
    bool owner_ = false;
};

}  // namespace dbsup
