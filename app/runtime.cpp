#include "app/runtime.hpp"

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>

#include <caf/all.hpp>

#include "actors/enqueue.hpp"
#include "actors/health_board.hpp"
#include "actors/monitor.hpp"
#include "actors/reader.hpp"
#include "actors/throttle.hpp"
#include "actors/writer_supervisor.hpp"
#include "core/log.hpp"
#include "http/actor_bridge.hpp"
#include "http/api.hpp"
#include "http/server.hpp"

namespace postd::app {

namespace {

persistence::redis_options redis_options(const config& c) {
  persistence::redis_options r;
  r.host = c.redis_host;
  r.port = c.redis_port;
  r.password = c.redis_password;
  return r;
}

persistence::queue_keys queue_keys(const config& c) {
  return {c.queue_prefix, c.queue_name};
}

struct actor_handles {
  actors::throttle_actor throttle;
  actors::enqueue_actor enqueue;
  actors::writer_supervisor_actor writers;
  actors::monitor_actor queue_monitor;
  actors::monitor_actor database_monitor;
  std::vector<actors::reader_actor> readers;
};

// Reads are rare next to creates; two keep one slow query from queueing
// every other.
constexpr int reader_count = 2;

actor_handles spawn_actors(caf::actor_system& sys, const config& c,
                           const std::shared_ptr<actors::health_board>& board) {
  actor_handles h;
  for (auto what : {actors::monitored::queue, actors::monitored::database})
    (what == actors::monitored::queue ? h.queue_monitor : h.database_monitor) =
        sys.spawn<caf::detached>(
            actors::monitor,
            actors::monitor_settings{what, redis_options(c), c.database_url,
                                     queue_keys(c),
                                     std::chrono::milliseconds{500}, board});
  actors::writer_settings w;
  w.redis = redis_options(c);
  w.database_url = c.database_url;
  w.keys = queue_keys(c);
  w.batch = static_cast<std::size_t>(c.writer_batch);
  w.backoff_ms = c.job_backoff_ms;
  w.keep_completed = c.keep_completed;
  w.keep_failed = c.keep_failed;
  // Fault-injection tests only, deliberately not settings (README): the
  // chance a writer crashes around a batch's write, and a short job lock
  // (also the stalled-check interval) so a killed instance's jobs come back
  // quickly.
  if (const char* v = std::getenv("POSTD_FAULT_WRITER_CRASH_RATE")) {
    char* end = nullptr;
    double rate = std::strtod(v, &end);
    if (end != v && *end == '\0' && rate > 0 && rate <= 1)
      w.fault_rate = rate;
  }
  if (const char* v = std::getenv("POSTD_FAULT_LOCK_MS")) {
    char* end = nullptr;
    double ms = std::strtod(v, &end);
    if (end != v && *end == '\0' && ms >= 100 && ms <= 3600000) {
      w.lock_for = std::chrono::milliseconds{static_cast<long long>(ms)};
      w.stalled_interval = w.lock_for;
    }
  }
  actors::writer_supervisor_settings ws;
  ws.writers = c.writers;
  ws.writer = w;
  ws.board = board;
  h.writers = sys.spawn(actors::writer_supervisor, ws);
  actors::enqueue_settings es;
  es.redis = redis_options(c);
  es.keys = queue_keys(c);
  es.attempts = c.job_attempts;
  es.backoff_ms = c.job_backoff_ms;
  es.max_waiting = c.queue_max_waiting;
  h.enqueue = sys.spawn<caf::detached>(actors::enqueue, es);
  std::chrono::milliseconds ttl{c.throttle_ttl_ms};
  if (c.throttle == throttle_store::redis)
    h.throttle = sys.spawn<caf::detached>(
        actors::redis_throttle,
        actors::redis_throttle_settings{
            redis_options(c),
            {c.throttle_limit, ttl, c.queue_prefix + ":throttle:"}},
        h.enqueue);
  else
    h.throttle =
        sys.spawn(actors::throttle,
                  actors::throttle_settings{c.throttle_limit, ttl}, h.enqueue);
  for (int i = 0; i < reader_count; ++i)
    h.readers.push_back(sys.spawn<caf::detached>(
        actors::reader, actors::reader_settings{
                            redis_options(c), c.database_url, queue_keys(c)}));
  return h;
}

int wait_for_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

} // namespace

void block_signals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int serve(const config& c) {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::postd>();
  // Only the throttle and the supervisor run on the scheduler; everything
  // that blocks is detached. Work stealing's idle workers poll with short
  // sleeps (~9% of postd's CPU under load in bench/); a shared queue with a
  // condition variable costs ~3 us less per request.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  caf::actor_system sys{cfg};
  auto board = std::make_shared<actors::health_board>();
  auto handles = spawn_actors(sys, c, board);
  auto stop_actors = [&] {
    for (const caf::actor& a :
         {caf::actor_cast<caf::actor>(handles.throttle),
          caf::actor_cast<caf::actor>(handles.enqueue),
          caf::actor_cast<caf::actor>(handles.writers),
          caf::actor_cast<caf::actor>(handles.queue_monitor),
          caf::actor_cast<caf::actor>(handles.database_monitor)})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  };

  http::actor_bridge bridge{handles.throttle, handles.readers, board};
  http::api api{
      http::api_settings{c.queue_name, c.max_content_chars, c.trust_proxy},
      http::token_verifier{c.jwt_secret}, bridge};
  std::unique_ptr<http::server> srv;
  try {
    srv = std::make_unique<http::server>(
        http::server_settings{
            .host = c.host,
            .port = c.port,
            .threads = c.http_threads,
            .max_body_bytes = c.max_body_bytes,
            .read_timeout = std::chrono::milliseconds{c.http_read_timeout_ms}},
        api);
  } catch (const std::exception& e) {
    std::cerr << "postd: " << e.what() << "\n";
    stop_actors();
    return 1;
  }
  srv->start();
  log::info("postd listening", {{"host", c.host},
                                {"port", srv->port()},
                                {"http_threads", c.http_threads},
                                {"writers", c.writers}});

  int sig = wait_for_signal();
  log::info("shutting down",
            {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  api.start_draining();
  srv->stop_accepting();
  srv->stop(std::chrono::milliseconds{c.shutdown_grace_ms});
  stop_actors();
  return 0;
}

} // namespace postd::app
