#include "core/metrics.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <stdexcept>

#include <unistd.h>

namespace postd::metrics {

namespace {

constexpr std::array<std::string_view, 4> method_names{"GET", "HEAD", "POST",
                                                       "other"};

// The shortest text that reads back as `v` (0.0025, not 0.0025000000000000001).
std::string number(double v) {
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return ec == std::errc{} ? std::string(buf.data(), end) : std::string("NaN");
}

void line(std::string& out, std::string_view name, std::string_view labels,
          std::string_view value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

void header(std::string& out, std::string_view name, std::string_view type,
            std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// Resident set size in bytes (from /proc/self/statm), 0 if unreadable.
std::uint64_t resident_bytes() {
  std::ifstream statm{"/proc/self/statm"};
  std::uint64_t pages = 0;
  std::uint64_t resident = 0;
  if (!(statm >> pages >> resident))
    return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

} // namespace

method method_of(std::string_view m) {
  for (std::size_t i = 0; i + 1 < method_names.size(); ++i)
    if (m == method_names[i])
      return static_cast<method>(i);
  return method::other;
}

template <std::size_t N, const std::array<double, N>& Bounds>
void histogram<N, Bounds>::render(std::string& out, std::string_view name,
                                  std::string_view labels) const {
  std::uint64_t total = 0;
  std::array<std::uint64_t, N + 1> counts{};
  for (std::size_t i = 0; i <= N; ++i)
    total += counts[i] = buckets_[i].load(std::memory_order_relaxed);
  if (total == 0)
    return;
  std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= N; ++i) {
    cumulative += counts[i];
    std::string le = i < N ? number(Bounds[i]) : "+Inf";
    line(out, bucket, std::string(labels) + "le=\"" + le + "\"",
         std::to_string(cumulative));
  }
  std::string plain(labels.substr(0, labels.empty() ? 0 : labels.size() - 1));
  line(out, std::string(name) + "_sum", plain,
       number(static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) /
              1e6));
  line(out, std::string(name) + "_count", plain, std::to_string(cumulative));
}

template class histogram<12, latency_bounds>;
template class histogram<9, batch_bounds>;

std::size_t registry::status_index(unsigned status) {
  for (std::size_t i = 0; i + 1 < known_statuses.size(); ++i)
    if (known_statuses[i] == status)
      return i;
  return known_statuses.size() - 1;
}

void registry::label_routes(std::vector<std::string> labels) {
  if (labels.empty() || labels.size() > max_routes)
    throw std::invalid_argument("metrics: 1.." + std::to_string(max_routes) +
                                " route labels");
  route_labels_ = std::move(labels);
}

void registry::request(std::size_t route, method m, unsigned status,
                       std::chrono::steady_clock::duration took) {
  auto ri = std::min(route, route_labels_.size() - 1);
  auto si = status_index(status);
  requests_[(ri * methods + static_cast<std::size_t>(m)) * statuses + si]
      .fetch_add(1, std::memory_order_relaxed);
  latency_[ri * statuses + si].observe(
      std::chrono::duration<double>(took).count());
  if (status == 429)
    throttled.fetch_add(1, std::memory_order_relaxed);
}

std::string registry::render(const snapshot& s) const {
  std::string out;
  out.reserve(8192);
  auto status_label = [](std::size_t si) {
    return known_statuses[si] ? std::to_string(known_statuses[si])
                              : std::string("other");
  };
  header(out, "http_requests_total", "counter",
         "HTTP requests answered, by route template, method and status.");
  for (std::size_t r = 0; r < route_labels_.size(); ++r)
    for (std::size_t m = 0; m < methods; ++m)
      for (std::size_t si = 0; si < statuses; ++si)
        if (auto n = requests_[(r * methods + m) * statuses + si].load(
                std::memory_order_relaxed))
          line(out, "http_requests_total",
               "route=\"" + route_labels_[r] + "\",method=\"" +
                   std::string(method_names[m]) + "\",status=\"" +
                   status_label(si) + "\"",
               std::to_string(n));
  header(out, "http_request_duration_seconds", "histogram",
         "Time from a whole request read to its answer, by route and status.");
  for (std::size_t r = 0; r < route_labels_.size(); ++r)
    for (std::size_t si = 0; si < statuses; ++si)
      latency_[r * statuses + si].render(out, "http_request_duration_seconds",
                                         "route=\"" + route_labels_[r] +
                                             "\",status=\"" + status_label(si) +
                                             "\",");

  header(out, "postd_queue_jobs", "gauge",
         "Jobs in the Bull queue by state, from the monitor's last check.");
  if (s.queue_known) {
    line(out, "postd_queue_jobs", "state=\"waiting\"",
         std::to_string(s.waiting));
    line(out, "postd_queue_jobs", "state=\"active\"", std::to_string(s.active));
    line(out, "postd_queue_jobs", "state=\"delayed\"",
         std::to_string(s.delayed));
    line(out, "postd_queue_jobs", "state=\"completed\"",
         std::to_string(s.completed));
    line(out, "postd_queue_jobs", "state=\"failed\"", std::to_string(s.failed));
  }
  header(out, "postd_dependency_up", "gauge",
         "1 when the monitor's last check of the dependency succeeded.");
  line(out, "postd_dependency_up", "dependency=\"redis\"",
       s.redis_up ? "1" : "0");
  line(out, "postd_dependency_up", "dependency=\"postgres\"",
       s.database_up ? "1" : "0");
  header(out, "postd_dependency_latency_seconds", "gauge",
         "How long the monitor's last check of the dependency took.");
  line(out, "postd_dependency_latency_seconds", "dependency=\"redis\"",
       number(s.redis_latency_ms / 1000));
  line(out, "postd_dependency_latency_seconds", "dependency=\"postgres\"",
       number(s.database_latency_ms / 1000));
  auto counter = [&](std::string_view name, std::string_view help,
                     const std::atomic<std::uint64_t>& v) {
    header(out, name, "counter", help);
    line(out, name, "", std::to_string(v.load(std::memory_order_relaxed)));
  };
  counter("postd_jobs_completed_total",
          "Jobs this process wrote and completed.", jobs_completed);
  counter("postd_jobs_failed_total",
          "Jobs this process moved to failed (attempts used up).", jobs_failed);
  counter("postd_jobs_retried_total",
          "Jobs this process sent back for a later attempt.", jobs_retried);
  counter("postd_jobs_stalled_total",
          "Stalled jobs (their worker's lock expired: it died or hung) this "
          "process's stalled check requeued or failed.",
          jobs_stalled);
  header(out, "postd_writer_restarts_total", "counter",
         "Writer actors restarted by their supervisor.");
  line(out, "postd_writer_restarts_total", "",
       std::to_string(s.writer_restarts));
  header(out, "postd_writers_running", "gauge", "Writer actors running now.");
  line(out, "postd_writers_running", "", std::to_string(s.writers_running));
  header(out, "postd_writers_configured", "gauge",
         "Writer actors configured (WRITERS).");
  line(out, "postd_writers_configured", "",
       std::to_string(s.writers_configured));
  header(out, "postd_actor_restarts_total", "counter",
         "Restarts of each actor under the root supervisor.");
  for (const auto& a : s.actors)
    line(out, "postd_actor_restarts_total", R"(actor=")" + a.name + "\"",
         std::to_string(a.restarts));
  header(out, "postd_actor_running", "gauge",
         "1 while the actor runs, 0 while its supervisor restarts it.");
  for (const auto& a : s.actors)
    line(out, "postd_actor_running", R"(actor=")" + a.name + "\"",
         a.running ? "1" : "0");
  if (!s.faults.empty()) {
    header(out, "postd_fault_active", "gauge",
           "1 while the fault API's fault is in force (FAULTS=on).");
    for (const auto& f : s.faults)
      line(out, "postd_fault_active", R"(fault=")" + f.name + "\"",
           f.active ? "1" : "0");
  }
  header(out, "postd_writer_batch_size", "histogram",
         "Jobs a writer took in one batch.");
  batch_sizes_.render(out, "postd_writer_batch_size", "");
  header(out, "postd_enqueue_batch_size", "histogram",
         "Creates one enqueue round trip added to Redis.");
  enqueue_batch_sizes_.render(out, "postd_enqueue_batch_size", "");
  counter("postd_db_errors_total", "PostgreSQL errors seen by writers.",
          db_errors);
  counter("postd_redis_errors_total",
          "Redis errors seen by the enqueue actor and the writers.",
          redis_errors);
  counter("postd_throttled_total", "Requests refused with 429.", throttled);
  counter("postd_jobs_recovered_total",
          "Acknowledged jobs a new Redis connection (failover, restart) "
          "lacked, added again with their postId.",
          jobs_recovered);
  counter("postd_recovery_log_dropped_total",
          "Acknowledged jobs the recovery log forgot before RECOVERY_LOG_MS "
          "(over RECOVERY_LOG_MAX_MB).",
          recovery_log_dropped);
  header(out, "postd_recovery_log_jobs", "gauge",
         "Acknowledged jobs the recovery log holds now.");
  line(out, "postd_recovery_log_jobs", "",
       std::to_string(recovery_log_jobs.load(std::memory_order_relaxed)));
  header(out, "postd_recovery_log_bytes", "gauge",
         "The recovery log's memory now, roughly.");
  line(out, "postd_recovery_log_bytes", "",
       std::to_string(recovery_log_bytes.load(std::memory_order_relaxed)));
  header(out, "postd_redis_replicas_online", "gauge",
         "Replicas online of the queue's Redis master (its INFO replication).");
  line(out, "postd_redis_replicas_online", "",
       std::to_string(s.redis_replicas_online));
  header(
      out, "postd_redis_ack_replicas", "gauge",
      "Replicas that must confirm each batch before its 202 (ACK_REPLICAS).");
  line(out, "postd_redis_ack_replicas", "",
       std::to_string(s.redis_ack_replicas));
  counter("postd_redis_wait_shortfalls_total",
          "Batches of creates that fewer than ACK_REPLICAS replicas "
          "confirmed within ACK_TIMEOUT_MS (answered 503).",
          wait_shortfalls);
  counter("postd_requests_timed_out_total",
          "Requests answered 503 after REQUEST_TIMEOUT_MS without an answer.",
          requests_timed_out);
  counter("postd_requests_dropped_total",
          "Requests answered 503 because their answer was lost inside postd.",
          requests_dropped);
  counter("postd_connections_refused_total",
          "Connections closed at once because MAX_CONNECTIONS were open.",
          connections_refused);
  header(out, "postd_connections_open", "gauge", "Client connections open.");
  line(out, "postd_connections_open", "",
       std::to_string(connections_open.load(std::memory_order_relaxed)));

  header(out, "process_resident_memory_bytes", "gauge",
         "Resident memory size in bytes.");
  line(out, "process_resident_memory_bytes", "",
       std::to_string(resident_bytes()));
  header(out, "process_start_time_seconds", "gauge",
         "Start time of the process since the Unix epoch in seconds.");
  line(out, "process_start_time_seconds", "",
       number(
           std::chrono::duration<double>(started_.time_since_epoch()).count()));
  header(out, "postd_uptime_seconds", "gauge",
         "Seconds since the process started.");
  line(out, "postd_uptime_seconds", "",
       number(std::chrono::duration<double>(std::chrono::system_clock::now() -
                                            started_)
                  .count()));
  return out;
}

registry& process() {
  static registry r;
  return r;
}

} // namespace postd::metrics
