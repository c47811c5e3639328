#pragma once

// Prometheus metrics without a client library (none is packaged in Debian):
// fixed label sets, so every series is an atomic counter allocated at start
// and counting on the hot path is one relaxed atomic add, never a lock.
// render() writes the text exposition format (version 0.0.4).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace postd::metrics {

// Requests are counted by route: the index of the route in the HTTP layer's
// route table, whose templates label the series (ids never become labels:
// bounded cardinality). At most max_routes, the last one for "other".
inline constexpr std::size_t max_routes = 16;

enum class method : std::uint8_t { get, head, post, other, count_ };
method method_of(std::string_view m);

// The statuses postd answers with; anything else counts as "other".
inline constexpr std::array<unsigned, 16> known_statuses{
    200, 201, 202, 400, 401, 403, 404, 405,
    408, 413, 415, 429, 431, 500, 503, 0 /* other */};

inline constexpr std::array<double, 12> latency_bounds{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
inline constexpr std::array<double, 9> batch_bounds{1,  2,  4,   8,  16,
                                                    32, 64, 128, 256};

// Cumulative-bucket histogram with fixed upper bounds (`le`).
template <std::size_t N, const std::array<double, N>& Bounds> class histogram {
public:
  void observe(double v) {
    std::size_t i = 0;
    while (i < N && v > Bounds[i])
      ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    // Sum in micro-units: an atomic double add would need a CAS loop.
    sum_micro_.fetch_add(static_cast<std::uint64_t>(v * 1e6),
                         std::memory_order_relaxed);
  }
  // Appends the series `name_bucket{labels,le=...}`, _sum and _count
  // (nothing while empty). `labels` ends with a comma when not empty.
  void render(std::string& out, std::string_view name,
              std::string_view labels) const;

private:
  std::array<std::atomic<std::uint64_t>, N + 1> buckets_{}; // last: +Inf
  std::atomic<std::uint64_t> sum_micro_{0};
};

using latency_histogram = histogram<12, latency_bounds>;
using batch_histogram = histogram<9, batch_bounds>;

// What the process counts. One instance (registry()) for the process.
class registry {
public:
  registry() : started_(std::chrono::system_clock::now()) {}

  // The route labels, by index; set once at start, before any request.
  void label_routes(std::vector<std::string> labels);

  // `route` is an index into the labels (an unknown one counts as the last).
  void request(std::size_t route, method m, unsigned status,
               std::chrono::steady_clock::duration took);

  std::atomic<std::uint64_t> jobs_completed{0};
  std::atomic<std::uint64_t> jobs_failed{0};
  std::atomic<std::uint64_t> jobs_retried{0};
  std::atomic<std::uint64_t> jobs_stalled{0};
  std::atomic<std::uint64_t> db_errors{0};
  std::atomic<std::uint64_t> redis_errors{0};
  std::atomic<std::uint64_t> throttled{0};
  // Batches that fewer than ACK_REPLICAS replicas confirmed in time.
  std::atomic<std::uint64_t> wait_shortfalls{0};
  // Acknowledged jobs a new Redis connection lacked, added again.
  std::atomic<std::uint64_t> jobs_recovered{0};
  // The recovery log: its size now, and jobs forgotten before their time
  // (over RECOVERY_LOG_MAX_MB).
  std::atomic<std::int64_t> recovery_log_jobs{0};
  std::atomic<std::int64_t> recovery_log_bytes{0};
  std::atomic<std::uint64_t> recovery_log_dropped{0};
  // The HTTP front: requests answered 503 by their deadline or because
  // their answer was lost inside postd; connections refused over
  // MAX_CONNECTIONS, and open now.
  std::atomic<std::uint64_t> requests_timed_out{0};
  std::atomic<std::uint64_t> requests_dropped{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::int64_t> connections_open{0};
  void batch(std::size_t jobs) {
    batch_sizes_.observe(static_cast<double>(jobs));
  }
  // Creates one round trip of the enqueue actor added to Redis: those that
  // arrived while the round trip before it (an fsync with appendfsync
  // always) was in flight.
  void enqueue_batch(std::size_t jobs) {
    enqueue_batch_sizes_.observe(static_cast<double>(jobs));
  }

  // State read at scrape time, from the monitor's view and the supervisor.
  struct snapshot {
    bool queue_known = false;
    std::int64_t waiting = 0, active = 0, completed = 0, failed = 0,
                 delayed = 0;
    long long writer_restarts = 0;
    int writers_running = 0;
    int writers_configured = 0; // WRITERS
    // The queue's Redis: replicas online (INFO replication), and how many
    // ACK_REPLICAS asks to confirm each batch.
    int redis_replicas_online = 0;
    int redis_ack_replicas = 0;
    // The root supervisor's children (throttle, enqueue, readers, ...).
    struct actor {
      std::string name;
      bool running = false;
      long long restarts = 0;
    };
    std::vector<actor> actors;
    // The fault API's faults (FAULTS=on; none otherwise) and whether each
    // is in force.
    struct fault {
      std::string name;
      bool active = false;
    };
    std::vector<fault> faults;
    bool redis_up = false, database_up = false; // checked recently and up
    double redis_latency_ms = 0, database_latency_ms = 0;
  };
  std::string render(const snapshot& s) const;

private:
  static constexpr std::size_t routes = max_routes;
  static constexpr std::size_t methods =
      static_cast<std::size_t>(method::count_);
  static constexpr std::size_t statuses = known_statuses.size();
  static std::size_t status_index(unsigned status);

  std::array<std::atomic<std::uint64_t>, routes * methods * statuses>
      requests_{};
  std::array<latency_histogram, routes * statuses> latency_;
  batch_histogram batch_sizes_;
  batch_histogram enqueue_batch_sizes_;
  std::vector<std::string> route_labels_{"other"};
  std::chrono::system_clock::time_point started_;
};

registry& process();

} // namespace postd::metrics
