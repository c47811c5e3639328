#include "actors/monitor.hpp"

#include "core/log.hpp"

namespace postd::actors {

namespace {

using clock = std::chrono::steady_clock;

double ms_since(clock::time_point start) {
  return std::chrono::duration<double, std::milli>(clock::now() - start)
      .count();
}

// The queue's connection checks Redis's durability settings once per
// connection (runtime wires that in), and reconnects on its own.
dependency_status probe_queue(monitor_state& st,
                              persistence::job_counts& counts,
                              core::replication_state& replication) {
  auto start = clock::now();
  try {
    counts = st.watched.queue->count_jobs();
    replication = st.watched.queue->replication();
    return {true, {}, ms_since(start)};
  } catch (const persistence::redis_error& e) {
    return {false, e.what(), ms_since(start)};
  }
}

dependency_status probe_database(monitor_state& st, const monitor_settings& s) {
  auto start = clock::now();
  try {
    st.watched.store(s).ping();
    return {true, {}, ms_since(start)};
  } catch (const core::store_error& e) {
    st.watched.db.reset();
    return {false, e.what(), ms_since(start)};
  }
}

void log_change(const char* what, const dependency_status& before,
                const dependency_status& now) {
  if (before.up == now.up)
    return;
  if (now.up)
    log::info(std::string(what) + " up");
  else
    log::error(std::string(what) + " down", {{"error", now.message}});
}

} // namespace

monitor_actor::behavior_type
monitor(monitor_actor::stateful_pointer<monitor_state> self,
        const monitor_settings& settings) {
  if (settings.what == monitored::queue)
    self->state.watched.queue = settings.make_queue();
  self->send(self, tick_atom::value);
  return {
      [self, settings](tick_atom) {
        auto previous = settings.board->view();
        if (settings.what == monitored::queue) {
          persistence::job_counts counts;
          core::replication_state replication;
          auto status = probe_queue(self->state, counts, replication);
          log_change("queue", previous->queue, status);
          settings.board->publish_queue(std::move(status), counts,
                                        std::move(replication), clock::now());
        } else {
          auto status = probe_database(self->state, settings);
          log_change("database", previous->database, status);
          settings.board->publish_database(std::move(status), clock::now());
        }
        self->delayed_send(self, settings.interval, tick_atom::value);
      },
  };
}

} // namespace postd::actors
