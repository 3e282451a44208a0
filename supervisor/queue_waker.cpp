#include "supervisor/queue_waker.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <string_view>
#include <system_error>

#include "config/password_resolver.hpp"
#include "config/queue_shares.hpp"
#include "shared/clock.hpp"
#include "shared/db/engine.hpp"
#include "shared/queue/queue.hpp"

namespace dbsup {
namespace {

std::set<std::string> served_queues(const Config& config) {
    std::set<std::string> names;
    for (const QueueShareConfig& share : queue_shares(config)) names.insert(share.name);
    return names;
}

constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr auto kFirstBackoff = std::chrono::milliseconds(500);
constexpr auto kMaxBackoff = std::chrono::seconds(30);
constexpr std::size_t kMaxDueTimes = 10000;  // beyond: left to the backstop poll

// LISTEN needs a session of its own on the server: through a transaction
// pooler it takes listen_url, a direct connection, or there is none.
std::string listen_conninfo(const Config& config) {
    auto db = config.databases.find(config.queue.database);
    if (db == config.databases.end() || db->second.url.backend != Backend::postgresql) return {};
    DatabaseConfig direct = db->second;
    if (direct.listen_url) {
        direct.url = *direct.listen_url;
        direct.pooler = "none";
    } else if (direct.transaction_pooled()) {
        return {};
    }
    return Engine(direct, PasswordResolver::resolve(direct), "dbsupervisor/waker").conninfo();
}

// Enqueuers on PostgreSQL wake workers only through NOTIFY: without a LISTEN
// connection the workers poll.
bool woken(const Config& config) {
    if (config.queue.wake != "auto") return false;
    auto db = config.databases.find(config.queue.database);
    return db == config.databases.end() || !db->second.transaction_pooled() ||
           db->second.listen_url.has_value();
}

// libpq's messages end in a newline, and name host and port, never the password.
std::string message_of(pg_conn* conn) {
    std::string text = conn ? PQerrorMessage(conn) : "out of memory";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

}  // namespace

QueueWaker::QueueWaker(const Config& config, ShmHeader& header)
    : conninfo_(listen_conninfo(config)),
      queue_names_(served_queues(config)),
      woken_(woken(config)),
      listen_(!conninfo_.empty() && woken_),
      pooled_without_listen_(config.queue.wake == "auto" && !woken_),
      poll_interval_(config.queue.poll_interval_ms),
      signal_(header.wake),
      cancel_epoch_(header.cancel_epoch),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (stop_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    if (pooled_without_listen_)
        spdlog::info("queue waker: database '{}' is behind a transaction pooler and has no "
                     "listen_url (a direct connection for LISTEN): workers poll every {} ms",
                     config.queue.database, poll_interval_.count());
    thread_ = std::thread([this] { run(); });
}

QueueWaker::~QueueWaker() {
    stop();
    ::close(stop_fd_);
}

void QueueWaker::stop() noexcept {
    if (!thread_.joinable()) return;
    const std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
}

std::string QueueWaker::mode() const {
    if (pooled_without_listen_) return "poll: pooled, no listen_url";
    if (!woken_) return "poll";
    if (!listen_) return "local";
    return listening_ ? "listen" : "poll: LISTEN down";
}

QueueWaker::Clock::duration QueueWaker::poll_interval() const {
    if (woken_ && (!listen_ || listening_))
        return std::max<Clock::duration>(kBackstop, poll_interval_);
    return poll_interval_;
}

int QueueWaker::wait_for(int fd, short events, Clock::time_point deadline) const {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, events, 0}};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    ::poll(fds, fd >= 0 ? 2 : 1, static_cast<int>(std::max<long>(0, left.count())));
    if (fds[0].revents & POLLIN) return -1;
    return fd >= 0 ? fds[1].revents : 0;
}

bool QueueWaker::connect() {
    const auto deadline = Clock::now() + kConnectTimeout;
    conn_ = PQconnectStart(conninfo_.c_str());
    // libpq's own connect_timeout does not apply to a non-blocking connect.
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (conn_ && PQstatus(conn_) != CONNECTION_BAD && status != PGRES_POLLING_OK &&
           status != PGRES_POLLING_FAILED) {
        const short events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (wait_for(PQsocket(conn_), events, deadline) <= 0) {
            if (Clock::now() >= deadline && !warned_down_)
                spdlog::warn("queue waker: connecting to PostgreSQL timed out");
            disconnect();
            return false;
        }
        status = PQconnectPoll(conn_);
    }
    PGresult* result = status == PGRES_POLLING_OK
                           ? PQexec(conn_, (std::string("LISTEN ") + Queue::kWakeChannel +
                                            "; LISTEN " + Queue::kCancelChannel)
                                               .c_str())
                           : nullptr;
    const bool ok = result && PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    if (!ok || PQsetnonblocking(conn_, 1) != 0) {
        if (!warned_down_)
            spdlog::warn("queue waker: cannot LISTEN on the queue's database ({}); polling every "
                         "{} ms until it can", message_of(conn_), poll_interval_.count());
        warned_down_ = true;
        disconnect();
        return false;
    }
    if (warned_down_) spdlog::info("queue waker: listening for new jobs again");
    warned_down_ = false;
    listening_ = true;
    return true;
}

void QueueWaker::disconnect() noexcept {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    listening_ = false;
}

// Payload "<jobs> <delay_ms> <queue>" (Queue::announce, dbsup_enqueue()).
bool QueueWaker::read_notifications(std::uint32_t& jobs_now) {
    if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) == CONNECTION_BAD) return false;
    while (PGnotify* n = PQnotifies(conn_)) {
        ++notifications_;
        if (std::string_view(n->relname) == Queue::kCancelChannel) {
            cancel_epoch_.fetch_add(1, std::memory_order_acq_rel);  // workers look which
            PQfreemem(n);
            continue;
        }
        std::istringstream payload(n->extra ? n->extra : "");
        std::uint64_t jobs = 0;
        std::int64_t delay_ms = 0;
        std::string queue;
        if (payload >> jobs >> delay_ms >> queue && queue_names_.count(queue) && jobs > 0) {
            if (delay_ms <= 0)
                jobs_now += static_cast<std::uint32_t>(std::min<std::uint64_t>(jobs, 1u << 20));
            else if (due_.size() < kMaxDueTimes)
                due_.push(monotonic_ns() + static_cast<std::uint64_t>(delay_ms) * 1'000'000);
        }
        PQfreemem(n);
    }
    return true;
}

void QueueWaker::run() noexcept {
    auto backoff = std::chrono::duration_cast<Clock::duration>(kFirstBackoff);
    auto next_connect = Clock::now();
    auto next_poll = Clock::now() + poll_interval();
    for (;;) {
        std::uint32_t jobs_now = 0;
        try {
            if (listen_ && !conn_ && Clock::now() >= next_connect) {
                if (connect()) {
                    backoff = kFirstBackoff;
                    jobs_now = 1;  // whatever was announced while nobody listened
                } else {
                    next_connect = Clock::now() + backoff;
                    backoff = std::min<Clock::duration>(backoff * 2, kMaxBackoff);
                }
            }
            auto until = next_poll;
            if (!due_.empty()) {  // monotonic_ns() and steady_clock are both CLOCK_MONOTONIC
                const auto now_ns = monotonic_ns();
                until = std::min(until, Clock::now() + std::chrono::nanoseconds(
                                                           due_.top() > now_ns ? due_.top() - now_ns : 0));
            }
            if (listen_ && !conn_) until = std::min(until, next_connect);
            const int ready = wait_for(conn_ ? PQsocket(conn_) : -1, POLLIN, until);
            if (ready < 0) break;  // stop()
            if ((ready & (POLLIN | POLLERR | POLLHUP)) && !read_notifications(jobs_now)) {
                spdlog::warn("queue waker: lost the LISTEN connection ({}); polling every {} ms "
                             "until it is back", message_of(conn_), poll_interval_.count());
                warned_down_ = true;
                disconnect();
                next_connect = Clock::now();
                jobs_now = std::max<std::uint32_t>(jobs_now, 1);
            }
        } catch (const std::exception& e) {  // never fatal: the backstop keeps the queue going
            spdlog::error("queue waker: {}", e.what());
            disconnect();
            next_connect = Clock::now() + backoff;
        }
        for (const std::uint64_t now = monotonic_ns(); !due_.empty() && due_.top() <= now;) {
            due_.pop();
            ++jobs_now;
        }
        if (Clock::now() >= next_poll) jobs_now = std::max<std::uint32_t>(jobs_now, 1);
        if (jobs_now == 0) continue;
        signal_.wake(jobs_now);
        wakes_ += jobs_now;
        next_poll = Clock::now() + poll_interval();
    }
    disconnect();
}

}  // namespace dbsup
