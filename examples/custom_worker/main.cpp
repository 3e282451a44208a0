// The whole dbsupervisor command line, plus one C++ task, "resize":
//   ./custom_worker init-db
//   ./custom_worker enqueue resize --payload '{"width": 200}'
//   ./custom_worker --workers 4
#include <dbsup/dbsupervisor.hpp>

#include <cstdint>

namespace {

// Runs in the job's transaction on the queue's database, which commits with
// the job's completion: the row exists exactly once per succeeded job.
void resize(const dbsup::Job& job, const nlohmann::json& payload, dbsup::Session& db) {
    const auto width = payload.value("width", std::int64_t{200});
    if (width <= 0 || width > 10000)
        throw dbsup::PermanentJobError("width must be from 1 to 10000");  // dead, not retried
    db.execute("CREATE TABLE IF NOT EXISTS thumbnails (job_id TEXT PRIMARY KEY, width INTEGER)");
    db.execute("INSERT INTO thumbnails (job_id, width) VALUES ($1, $2)", {job.id, width});
}

}  // namespace

int main(int argc, char** argv) {
    return dbsup::run(argc, argv, [](dbsup::TaskRegistry& tasks) { tasks.add("resize", resize); });
}
