#pragma once

// Bull 4 jobs as postd sees them (SPEC §5): taken for writing, finished,
// looked up, counted. Plain data; persistence/bull_queue moves them.

#include <cstdint>
#include <string>
#include <vector>

namespace postd::core {

struct active_job {
  std::string id;
  std::string name;
  std::string data;
  std::string opts;
  int attempts_made = 0;
  std::int64_t timestamp_ms = 0;
};

// One replica as its master's INFO replication lists it.
struct replica_state {
  std::string address;          // ip:port
  std::string state;            // "online", "wait_bgsave", "send_bulk", ...
  std::int64_t lag_bytes = 0;   // the master's offset minus the replica's
  std::int64_t lag_seconds = 0; // since its last acknowledgement
};

// The queue's Redis in replication terms (INFO replication).
struct replication_state {
  std::string role; // "master" or "slave"; empty when unknown
  std::vector<replica_state> replicas;
};

struct completion {
  std::string job_id;
  std::string return_value;     // JSON text stored as `returnvalue`
  std::string opts = {};        // the job's opts as taken (removeOnComplete)
  std::string traceparent = {}; // its data's (W3C), for the logs
  // The job's post id, and the row that stands for it: the same, or an
  // earlier post's with the same Idempotency-Key.
  std::string post_id = {};
  std::string row_id = {};
};

struct failure {
  std::string job_id;
  std::string reason;
  std::string traceparent = {}; // its data's (W3C), for the logs
};

struct job_counts {
  std::int64_t waiting = 0;
  std::int64_t active = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t delayed = 0;
  std::int64_t paused = 0;
};

struct job_info {
  std::string id;
  std::string state; // waiting|active|delayed|completed|failed|paused|stuck
  std::string data;
  std::string return_value;
  std::string failed_reason;
  int attempts_made = 0;
  std::int64_t timestamp_ms = 0;
};

} // namespace postd::core
