#include "worker/command_task.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/group.hpp>
#include <boost/process/io.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <system_error>
#include <thread>

#include "shared/child_setup.hpp"
#include "worker/permanent_job_error.hpp"
#include "worker/snooze_job.hpp"

namespace dbsup {
namespace {

namespace bp = boost::process;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kOutputTail = 2000;  // bytes of output kept in last_error
constexpr auto kDefaultSnooze = std::chrono::seconds(60);

// A file of ours in the temp directory, removed with the object.
class TempFile {
public:
    TempFile() {
        std::string pattern = "/tmp/dbsup-command.XXXXXX";
        const int fd = ::mkstemp(pattern.data());
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "mkstemp");
        ::close(fd);
        path_ = pattern;
    }
    ~TempFile() { std::remove(path_.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string tail_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    const auto size = static_cast<std::size_t>(std::max<std::streamoff>(0, in.tellg()));
    const std::size_t keep = std::min(size, kOutputTail);
    std::string text(keep, '\0');
    in.seekg(static_cast<std::streamoff>(size - keep));
    in.read(text.data(), static_cast<std::streamsize>(keep));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

std::string describe(const std::vector<std::string>& command) {
    std::string out;
    for (const std::string& word : command) out += (out.empty() ? "" : " ") + word;
    return out.substr(0, 200);
}

// Runs the program to its end (or its timeout); the exit code, -signal when
// killed by one. @throws PermanentJobError when it cannot start at all
int run_to_end(const std::vector<std::string>& command, const Job& job,
               const TempFile& input, const TempFile& output, std::int64_t timeout_ms,
               bool& timed_out) {
    bp::environment env = boost::this_process::environment();
    env["DBSUP_JOB_ID"] = job.id;
    env["DBSUP_JOB_ATTEMPT"] = std::to_string(job.attempts);
    env["DBSUP_JOB_TASK"] = job.task;
    env["DBSUP_JOB_QUEUE"] = job.queue;
    bp::group group;
    std::error_code error;
    bp::child child(bp::exe = command[0],
                    bp::args = std::vector<std::string>(command.begin() + 1, command.end()),
                    bp::std_in < input.path(), (bp::std_out & bp::std_err) > output.path(), env,
                    group,
                    bp::extend::on_exec_setup = [](auto&) {
                        child_setup::close_on_exec_above_stderr();
                        child_setup::default_signals();
                    },
                    error);
    if (error)
        throw PermanentJobError("command " + describe(command) + ": cannot start: " +
                                error.message());
    // running() reaps the child once it has ended; polled, since Boost.Process 1.81's
    // wait_for is unreliable with other threads forking too.
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (child.running(error) && (timeout_ms <= 0 || Clock::now() < deadline) &&
           !job.stop.stop_requested())
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (child.running(error)) {
        timed_out = !job.stop.stop_requested();  // else an operator cancelled the job
        group.terminate(error);  // SIGKILL to the whole group: its children too
        child.wait(error);
    }
    const int status = child.native_exit_code();
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

void run_command(const std::vector<std::string>& command, std::int64_t timeout_ms,
                 const Job& job) {
    TempFile input, output;
    {
        std::ofstream(input.path(), std::ios::binary) << job.payload;
    }
    bool timed_out = false;
    const int code = run_to_end(command, job, input, output, timeout_ms, timed_out);
    if (code == 0 && !timed_out) return;
    const std::string tail = tail_of(output.path());
    if (code == CommandTask::kSnoozeExitCode && !timed_out)
        throw SnoozeJob(SnoozeJob::requested_by(tail).value_or(kDefaultSnooze));
    std::string why = timed_out ? "timed out after " + std::to_string(timeout_ms) +
                                      " ms; its process group was killed"
                      : code < 0 ? "was killed by signal " + std::to_string(-code)
                                 : "exited with status " + std::to_string(code);
    throw std::runtime_error("command " + describe(command) + " " + why +
                             (tail.empty() ? "" : "; output: " + tail));
}

}  // namespace

TaskDefinition CommandTask::definition(const TaskConfig& config,
                                       const std::string& queue_database) {
    TaskDefinition task;
    task.name = config.name;
    task.database = queue_database;
    task.timeout_ms = config.timeout_ms;
    task.uses_session = false;  // it runs no statement: nothing of the database is held
    task.handler = [command = config.command, timeout = config.timeout_ms](
                       const Job& job, const nlohmann::json&, Session&) {
        run_command(command, timeout, job);
    };
    return task;
}

}  // namespace dbsup
