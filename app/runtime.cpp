#include "app/runtime.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>

#include <caf/all.hpp>

#include "actors/directory.hpp"
#include "actors/enqueue.hpp"
#include "actors/file_sweeper.hpp"
#include "actors/health_board.hpp"
#include "actors/monitor.hpp"
#include "actors/reader.hpp"
#include "actors/supervisor.hpp"
#include "actors/throttle.hpp"
#include "actors/writer_supervisor.hpp"
#include "core/fault.hpp"
#include "core/log.hpp"
#include "http/actor_bridge.hpp"
#include "http/api.hpp"
#include "http/server.hpp"
#include "persistence/bull_job_queue.hpp"
#include "persistence/faulty_stores.hpp"
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
  o.sentinel = {c.redis_sentinels, c.redis_sentinel_name,
                c.redis_sentinel_password};
  o.timeout = std::chrono::milliseconds{c.redis_timeout_ms};
  if (r == reconnect::paced_by_actor)
    o.reconnect_base = o.reconnect_cap = std::chrono::milliseconds{0};
  o.owner = std::move(owner);
  return o;
}

persistence::queue_keys queue_keys(const config& c) {
  return {c.queue_prefix, c.queue_name};
}

// The fault API's board (FAULTS=on), or none.
using fault_board_ptr = std::shared_ptr<const core::fault_board>;

persistence::job_queue_factory
queue_factory(const config& c,
              const persistence::redis_connection_options& redis,
              const fault_board_ptr& faults) {
  return persistence::with_faults(
      [redis, keys = queue_keys(c)] {
        return std::make_unique<persistence::bull_job_queue>(redis, keys);
      },
      faults);
}

// Every PostgreSQL session of the server: the URL, Prisma's schema (set per
// transaction, as PgBouncer's transaction mode requires) and the timeouts.
// `replica`: DATABASE_READ_URL's (none when it is not set).
persistence::post_store_factory store_factory(const config& c,
                                              const fault_board_ptr& faults,
                                              bool replica = false) {
  if (replica && c.database_read_url.empty())
    return {};
  persistence::pg_options options{
      .url = replica ? c.database_read_url : c.database_url,
      .schema = replica ? c.database_read_schema : c.database_schema,
      .connect_timeout = std::chrono::milliseconds{c.db_connect_timeout_ms},
      .statement_timeout =
          std::chrono::milliseconds{c.db_statement_timeout_ms}};
  return persistence::with_faults(
      [options] { return persistence::make_postgres_post_store(options); },
      faults);
}

// Reads are rare next to creates; two keep one slow query from queueing
// every other.
constexpr std::size_t reader_count = 2;

// A child of the root supervisor that blocks (hiredis, libpqxx) and so runs
// on its own thread.
template <class... Args>
actors::child_spec blocking_child(std::string name, Args... args) {
  return {std::move(name),
          [args...](caf::actor_system& sys) {
            return actors::started_child{
                caf::actor_cast<caf::actor>(sys.spawn<caf::detached>(args...)),
                {}};
          },
          {},
          {}};
}

// The same for an actor whose settings count its progress (enqueue,
// readers): restarted without backing off further after it got work done.
template <class Behavior, class Settings>
actors::child_spec counting_blocking_child(std::string name, Behavior behavior,
                                           Settings settings) {
  return {std::move(name),
          actors::counting_start(
              std::move(settings),
              [behavior](caf::actor_system& sys, const Settings& s) {
                return sys.spawn<caf::detached>(behavior, s);
              }),
          {},
          {}};
}

// Makes `spec`'s actor findable in `entry` while it runs.
template <class Handle>
actors::child_spec
listed(actors::child_spec spec, const std::shared_ptr<actors::directory>& dir,
       actors::actor_entry<Handle> actors::directory::*entry) {
  spec.on_start = [dir, entry](const caf::actor& a) {
    ((*dir).*entry).set(caf::actor_cast<Handle>(a));
  };
  spec.on_stop = [dir, entry] { ((*dir).*entry).clear(); };
  return spec;
}

actors::writer_supervisor_settings
writer_pool_settings(const config& c,
                     const std::shared_ptr<actors::health_board>& board,
                     const fault_board_ptr& faults,
                     const std::shared_ptr<http::post_waiters>& waiters) {
  actors::writer_settings w;
  w.make_queue = queue_factory(
      c, redis_options(c, "writer", reconnect::paced_by_actor), faults);
  w.make_store = store_factory(c, faults);
  w.batch = static_cast<std::size_t>(c.writer_batch);
  w.nice = c.writer_nice;
  w.linger = std::chrono::milliseconds{c.writer_linger_ms};
  w.rows_awaited = [waiters] { return waiters->waiting() > 0; };
  w.backoff_ms = c.job_backoff_ms;
  w.keep_completed = c.keep_completed;
  w.keep_failed = c.keep_failed;
  w.faults = faults;
  w.on_persisted = [waiters](const std::vector<core::completion>& done) {
    waiters->persisted(done);
  };
  // Fault-injection tests only (config's fault_knobs()).
  if (c.fault_lock_ms > 0) {
    w.lock_for = std::chrono::milliseconds{c.fault_lock_ms};
    w.stalled_interval = w.lock_for;
  }
  actors::writer_supervisor_settings ws;
  ws.writers = c.writers;
  ws.writer = w;
  ws.board = board;
  return ws;
}

// The attachment sweep: STORAGE_DIR's files that no row and no pending
// job can hold, checked against the primary (a lagging replica would miss
// the newest rows).
actors::file_sweeper_settings file_sweeper_settings(const config& c) {
  actors::file_sweeper_settings s;
  s.options.dir = c.storage_dir;
  s.options.url_prefixes = {c.public_files_url};
  s.options.queue = persistence::queue_keys{c.queue_prefix, c.queue_name};
  s.options.database = persistence::pg_options{
      .url = c.database_url,
      .schema = c.database_schema,
      .connect_timeout = std::chrono::milliseconds{c.db_connect_timeout_ms},
      .statement_timeout =
          std::chrono::milliseconds{c.db_statement_timeout_ms}};
  s.redis = redis_options(c, "file_sweeper", reconnect::paced_by_actor);
  // Fault-injection tests only (config's fault_knobs()).
  if (c.fault_sweep_ms > 0) {
    std::chrono::milliseconds ms{c.fault_sweep_ms};
    s.every = ms;
    s.options.policy = {ms, ms};
  }
  return s;
}

// Every long-lived actor, as the root supervisor's children: the writer
// pool's own supervisor, the two monitors, the enqueue actor, the throttle
// and the readers; those that HTTP requests reach are listed in `dir`.
actors::supervisor_settings
root_settings(const config& c, const std::shared_ptr<actors::directory>& dir,
              const std::shared_ptr<actors::health_board>& board,
              const fault_board_ptr& faults,
              const std::shared_ptr<http::post_waiters>& waiters) {
  actors::supervisor_settings root;
  root.name = "root";
  root.report = [board](const actors::supervisor_status& s) {
    board->publish_services(s);
  };
  root.children.push_back(
      {"writers",
       [pool = actors::writer_pool(writer_pool_settings(
            c, board, faults, waiters))](caf::actor_system& sys) {
         // It only bookkeeps: on the scheduler.
         return actors::started_child{
             caf::actor_cast<caf::actor>(sys.spawn(actors::supervisor, pool)),
             {}};
       },
       {},
       {}});

  auto monitor_redis = redis_options(c, "monitor", reconnect::paced_by_actor);
  // Once per connection: a Redis restarted with other settings is seen.
  monitor_redis.on_connect = persistence::warn_about_durability;
  for (auto what : {actors::monitored::queue, actors::monitored::database})
    root.children.push_back(blocking_child(
        what == actors::monitored::queue ? "queue-monitor" : "database-monitor",
        actors::monitor,
        actors::monitor_settings{
            {queue_factory(c, monitor_redis, faults), store_factory(c, faults)},
            what,
            std::chrono::milliseconds{500},
            board}));

  actors::enqueue_settings es;
  es.make_queue =
      queue_factory(c, redis_options(c, "enqueue", reconnect::backoff), faults);
  es.attempts = c.job_attempts;
  es.backoff_ms = c.job_backoff_ms;
  es.max_waiting = c.queue_max_waiting;
  es.ack_replicas = c.ack_replicas;
  es.ack_timeout = std::chrono::milliseconds{c.ack_timeout_ms};
  // Kept across restarts of the enqueue actor (the spec holds the pointer).
  // A Sentinel failover demotes the old master ~10 s after it began: the
  // default 30 s window covers it.
  if (c.recovery_log_ms > 0)
    es.recovery = std::make_shared<actors::ack_log>(
        std::chrono::milliseconds{c.recovery_log_ms},
        static_cast<std::size_t>(c.recovery_log_max_mb) << 20U);
  es.faults = faults;
  root.children.push_back(
      listed(counting_blocking_child("enqueue", actors::enqueue, es), dir,
             &actors::directory::enqueue));

  actors::enqueue_lookup find_enqueue = [dir] { return dir->enqueue.get(); };
  std::chrono::milliseconds ttl{c.throttle_ttl_ms};
  actors::child_spec throttle;
  if (c.throttle == throttle_store::redis) {
    auto make_store =
        [redis = redis_options(c, "redis_throttle", reconnect::backoff),
         limits = persistence::rate_limit_settings{
             c.throttle_limit, ttl, c.queue_prefix + ":throttle:"}] {
          return std::make_unique<persistence::redis_rate_limit_store>(redis,
                                                                       limits);
        };
    throttle = blocking_child("throttle", actors::redis_throttle,
                              actors::redis_throttle_settings{make_store},
                              find_enqueue);
  } else {
    // In memory, it never blocks: on the scheduler. Its counts start over
    // when it restarts.
    throttle = {"throttle",
                [limits = actors::throttle_settings{c.throttle_limit, ttl},
                 find_enqueue](caf::actor_system& sys) {
                  return actors::started_child{
                      caf::actor_cast<caf::actor>(
                          sys.spawn(actors::throttle, limits, find_enqueue)),
                      {}};
                },
                {},
                {}};
  }
  root.children.push_back(
      listed(std::move(throttle), dir, &actors::directory::throttle));

  if (c.max_files > 0)
    root.children.push_back(blocking_child("file-sweeper", actors::file_sweeper,
                                           file_sweeper_settings(c)));

  actors::reader_settings rs;
  static_cast<actors::connection_factories&>(rs) = {
      queue_factory(c, redis_options(c, "reader", reconnect::paced_by_actor),
                    faults),
      store_factory(c, faults)};
  rs.make_read_store = store_factory(c, faults, /*replica=*/true);
  rs.faults = faults;
  for (std::size_t i = 0; i < reader_count; ++i) {
    auto spec = counting_blocking_child("reader-" + std::to_string(i),
                                        actors::reader, rs);
    spec.on_start = [dir, i](const caf::actor& a) {
      dir->readers[i].set(caf::actor_cast<actors::reader_actor>(a));
    };
    spec.on_stop = [dir, i] { dir->readers[i].clear(); };
    root.children.push_back(std::move(spec));
  }
  return root;
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

// Waits `delay` or until a second SIGTERM/SIGINT cuts it short.
void wait_or_signal(std::chrono::milliseconds delay) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const auto end = std::chrono::steady_clock::now() + delay;
  for (auto left = delay; left.count() > 0;
       left = std::chrono::duration_cast<std::chrono::milliseconds>(
           end - std::chrono::steady_clock::now())) {
    timespec ts{static_cast<time_t>(left.count() / 1000),
                static_cast<long>(left.count() % 1000) * 1000000L};
    if (sigtimedwait(&set, nullptr, &ts) >= 0)
      return; // a second signal: no more waiting
    if (errno != EINTR)
      return; // EAGAIN: the delay is over
  }
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
  // Only the supervisors and the in-memory throttle run on the scheduler;
  // everything that blocks is detached. Work stealing's idle workers poll
  // with short sleeps (~9% of postd's CPU under load in bench/); a shared
  // queue with a condition variable costs ~3 us less per request.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  caf::actor_system sys{cfg};
  auto board = std::make_shared<actors::health_board>();
  auto dir = std::make_shared<actors::directory>(reader_count);
  std::shared_ptr<core::fault_board> faults;
  if (c.faults) {
    faults = std::make_shared<core::fault_board>();
    log::warn("the fault API is on (FAULTS=on): /admin/faults can slow and "
              "fail this server on demand; never in production");
    if (c.admin_token.size() < recommended_admin_token)
      log::warn("ADMIN_TOKEN is short: a guessable token lets anyone stall "
                "this server through /admin/faults",
                {{"length", c.admin_token.size()},
                 {"recommended", recommended_admin_token}});
  }
  // Creates waiting for their rows (Prefer: wait), woken by the writers.
  auto waiters = std::make_shared<http::post_waiters>();
  auto root = sys.spawn(actors::supervisor,
                        root_settings(c, dir, board, faults, waiters));
  // Every actor stops and is waited for: a request still in a mailbox is
  // answered 503 by its reply handle, and no callback outlives the API and
  // the server it reaches (they are destroyed after this function's end).
  auto stop_actors = [&] {
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  };

  http::actor_bridge bridge{dir, board, c.writers > 0 ? waiters : nullptr};
  http::api api{
      http::api_settings{.queue_name = c.queue_name,
                         .max_content_chars = c.max_content_chars,
                         .trust_proxy = c.trust_proxy,
                         .ack_replicas = c.ack_replicas,
                         .faults = faults,
                         .admin_token = c.admin_token,
                         .max_files = static_cast<std::size_t>(c.max_files),
                         .max_file_bytes = c.max_file_bytes,
                         .storage_dir = c.storage_dir,
                         .public_files_url = c.public_files_url},
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
  // Readiness fails first, while requests are still served for
  // SHUTDOWN_DELAY_MS (load balancers and Kubernetes take the instance out
  // on their next check); then no new connection, idle ones close, requests
  // in flight are answered (202, or 503 at their deadline).
  api.start_draining();
  if (c.shutdown_delay_ms > 0) {
    log::info("readiness failing before the drain",
              {{"delay_ms", c.shutdown_delay_ms}});
    wait_or_signal(std::chrono::milliseconds{c.shutdown_delay_ms});
  }
  srv->stop_accepting();
  if (!srv->wait_idle(std::chrono::milliseconds{c.shutdown_grace_ms}))
    log::warn("requests still in flight after the grace period: answering "
              "them 503",
              {{"grace_ms", c.shutdown_grace_ms}});
  stop_actors();
  // Creates still waiting for their rows (Prefer: wait) get their 202.
  waiters->stop();
  // The 503s of requests the actors dropped are written, then I/O stops.
  srv->stop(std::chrono::milliseconds{1000});
  log::info("stopped");
  return 0;
}

} // namespace postd::app
