// Enqueues N jobs one at a time through the C++ API, each in its own
// transaction, INTERVAL_MS apart, as an application would (run by
// tests/bench/latency_bench.sh). Each payload carries the enqueue time,
// {"t": epoch microseconds}, taken just before the transaction, so the task
// that runs it can record how long it waited to start. With LONG_EVERY, every
// LONG_EVERY-th job is a `sleep` of 200 ms instead (a mixed workload).
//   pickup_enqueuer CONFIG TASK N INTERVAL_MS [LONG_EVERY]
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "config/config_loader.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/queue.hpp"

int main(int argc, char** argv) {
    if (argc != 5 && argc != 6) {
        std::cerr << "usage: pickup_enqueuer CONFIG TASK N INTERVAL_MS [LONG_EVERY]\n";
        return 2;
    }
    try {
        const dbsup::Config config = dbsup::ConfigLoader::load_file(argv[1]);
        const std::string task = argv[2];
        const long n = std::stol(argv[3]);
        const auto interval = std::chrono::milliseconds(std::stol(argv[4]));
        const long long_every = argc == 6 ? std::stol(argv[5]) : 0;
        auto& db = dbsup::DatabaseManager::instance();
        db.init_worker(config.databases, "pickup_enqueuer");
        const dbsup::Queue queue = dbsup::Queue::from_config(config);
        dbsup::Session& session = db.session(config.queue.database);
        for (long i = 0; i < n; ++i) {
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
            dbsup::NewJob job;
            job.task = task;
            job.payload = "{\"t\": " + std::to_string(us) + "}";
            if (long_every > 0 && (i + 1) % long_every == 0) {
                job.task = "sleep";
                job.payload = "{\"ms\": 200}";
            }
            session.transact([&](dbsup::Session& s) { queue.enqueue(s, job); });
            std::this_thread::sleep_for(interval);
        }
        db.close_worker();
    } catch (const std::exception& e) {
        std::cerr << "pickup_enqueuer: " << e.what() << "\n";
        return 1;
    }
}
