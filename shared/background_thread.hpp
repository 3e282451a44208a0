// A helper thread of a process whose signals belong to its event loop: it
// starts with every signal blocked, so a SIGTERM or SIGCHLD is never delivered
// to it (where no one would look at the flag the handler sets).
#pragma once

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace dbsup {

template <class F>
std::thread start_background_thread(F&& f) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    std::thread thread(std::forward<F>(f));  // inherits the blocked mask
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return thread;
}

}  // namespace dbsup
