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
#include "persistence/bull_job_queue.hpp"
#include "persistence/postgres_post_store.hpp"
#include "persistence/redis_rate_limit_store.hpp"

namespace postd::app {

namespace {

// How an actor's Redis connection retries: actors that pace their own
// retries (the writers' backoff, the monitor's tick, one query at a time
// for readers) try at once; the others fail fast during the backoff.
enum class reconnect { paced_by_actor, backoff };

persistence::redis_connection_options
redis_options(const config& c, std::string owner, reconnect r) {
  persistence::redis_connection_options o;
  o.redis.host = c.redis_host;
  o.redis.port = c.redis_port;
  o.redis.password = c.redis_password;
  o.timeout = std::chrono::milliseconds{c.redis_timeout_ms};
  if (r == reconnect::paced_by_actor)
    o.reconnect_base = o.reconnect_cap = std::chrono::milliseconds{0};
  o.owner = std::move(owner);
  return o;
}

persistence::queue_keys queue_keys(const config& c) {
  return {c.queue_prefix, c.queue_name};
}

persistence::job_queue_factory
queue_factory(const config& c,
              const persistence::redis_connection_options& redis) {
  return [redis, keys = queue_keys(c)] {
    return std::make_unique<persistence::bull_job_queue>(redis, keys);
  };
}

// Every PostgreSQL session of the server: the URL, Prisma's schema (set per
// transaction, as PgBouncer's transaction mode requires) and the timeouts.
persistence::post_store_factory store_factory(const config& c) {
  persistence::pg_options options{
      .url = c.database_url,
      .schema = c.database_schema,
      .connect_timeout = std::chrono::milliseconds{c.db_connect_timeout_ms},
      .statement_timeout =
          std::chrono::milliseconds{c.db_statement_timeout_ms}};
  return [options] { return persistence::make_postgres_post_store(options); };
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
  auto monitor_redis = redis_options(c, "monitor", reconnect::paced_by_actor);
  // Once per connection: a Redis restarted with other settings is seen.
  monitor_redis.on_connect = persistence::warn_about_durability;
  for (auto what : {actors::monitored::queue, actors::monitored::database})
    (what == actors::monitored::queue ? h.queue_monitor : h.database_monitor) =
        sys.spawn<caf::detached>(
            actors::monitor,
            actors::monitor_settings{
                {queue_factory(c, monitor_redis), store_factory(c)},
                what,
                std::chrono::milliseconds{500},
                board});
  actors::writer_settings w;
  w.make_queue =
      queue_factory(c, redis_options(c, "writer", reconnect::paced_by_actor));
  w.make_store = store_factory(c);
  w.batch = static_cast<std::size_t>(c.writer_batch);
  w.backoff_ms = c.job_backoff_ms;
  w.keep_completed = c.keep_completed;
  w.keep_failed = c.keep_failed;
  // Fault-injection tests only (config's fault_knobs()).
  w.fault_rate = c.fault_writer_crash_rate;
  if (c.fault_lock_ms > 0) {
    w.lock_for = std::chrono::milliseconds{c.fault_lock_ms};
    w.stalled_interval = w.lock_for;
  }
  actors::writer_supervisor_settings ws;
  ws.writers = c.writers;
  ws.writer = w;
  ws.board = board;
  h.writers = sys.spawn(actors::writer_supervisor, ws);
  actors::enqueue_settings es;
  es.make_queue =
      queue_factory(c, redis_options(c, "enqueue", reconnect::backoff));
  es.attempts = c.job_attempts;
  es.backoff_ms = c.job_backoff_ms;
  es.max_waiting = c.queue_max_waiting;
  h.enqueue = sys.spawn<caf::detached>(actors::enqueue, es);
  std::chrono::milliseconds ttl{c.throttle_ttl_ms};
  if (c.throttle == throttle_store::redis) {
    auto make_store =
        [redis = redis_options(c, "redis_throttle", reconnect::backoff),
         limits = persistence::rate_limit_settings{
             c.throttle_limit, ttl, c.queue_prefix + ":throttle:"}] {
          return std::make_unique<persistence::redis_rate_limit_store>(redis,
                                                                       limits);
        };
    h.throttle = sys.spawn<caf::detached>(
        actors::redis_throttle, actors::redis_throttle_settings{make_store},
        h.enqueue);
  } else {
    h.throttle =
        sys.spawn(actors::throttle,
                  actors::throttle_settings{c.throttle_limit, ttl}, h.enqueue);
  }
  for (int i = 0; i < reader_count; ++i)
    h.readers.push_back(sys.spawn<caf::detached>(
        actors::reader,
        actors::reader_settings{
            queue_factory(
                c, redis_options(c, "reader", reconnect::paced_by_actor)),
            store_factory(c)}));
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
            .read_timeout = std::chrono::milliseconds{c.http_read_timeout_ms},
            .request_timeout = std::chrono::milliseconds{c.request_timeout_ms},
            .max_connections = c.max_connections},
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
