#include "actors/writer_supervisor.hpp"

#include "core/log.hpp"

namespace postd::actors {

namespace {

using self_ptr =
    writer_supervisor_actor::stateful_pointer<writer_supervisor_state>;

void publish(self_ptr self, const writer_supervisor_settings& s) {
  if (!s.board)
    return;
  int running = 0;
  for (const auto& c : self->state.children)
    running += c ? 1 : 0;
  s.board->publish_writers(
      {s.writers, running, self->state.restarts, self->state.escalated});
}

void start_writer(self_ptr self, const writer_supervisor_settings& s,
                  int slot) {
  auto i = static_cast<std::size_t>(slot);
  auto& st = self->state;
  auto settings = s.writer;
  settings.progress = st.progress[i] =
      std::make_shared<std::atomic<std::uint64_t>>(0);
  auto child =
      s.detached ? self->spawn<caf::detached + caf::monitored>(writer, settings)
                 : self->spawn<caf::monitored>(writer, settings);
  st.children[i] = child;
  st.slots[child.address()] = slot;
  st.policy.started(slot, self->clock().now());
  publish(self, s);
}

// While escalated, ten times a period: has a whole period gone calmly?
void schedule_calm_check(self_ptr self) {
  self->delayed_send(self, self->state.policy.period() / 10, tick_atom::value);
}

} // namespace

writer_supervisor_actor::behavior_type
writer_supervisor(self_ptr self, const writer_supervisor_settings& settings) {
  auto& st = self->state;
  st.policy = core::restart_policy{settings.writers, settings.max_restarts,
                                   settings.period};
  st.children.resize(static_cast<std::size_t>(settings.writers));
  st.progress.resize(static_cast<std::size_t>(settings.writers));
  for (int i = 0; i < settings.writers; ++i)
    start_writer(self, settings, i);
  self->set_down_handler([self, settings](const caf::down_msg& dm) {
    auto& st = self->state;
    auto it = st.slots.find(dm.source);
    if (it == st.slots.end())
      return;
    int slot = it->second;
    st.slots.erase(it);
    st.children[static_cast<std::size_t>(slot)] = writer_actor{};
    if (!dm.reason)
      return publish(self, settings); // a normal exit is a requested stop
    ++st.restarts;
    bool progressed =
        *st.progress[static_cast<std::size_t>(slot)] > 0; // batches finished
    auto d = st.policy.crashed(slot, self->clock().now(), progressed);
    if (d.escalated && !st.escalated) {
      log::error("writers keep crashing: escalating",
                 {{"restarts", st.restarts}, {"reason", to_string(dm.reason)}});
      schedule_calm_check(self);
    }
    st.escalated = st.escalated || d.escalated;
    log::warn("writer crashed, restarting", {{"slot", slot},
                                             {"reason", to_string(dm.reason)},
                                             {"delay_ms", d.delay.count()}});
    publish(self, settings);
    self->delayed_send(self, d.delay, restart_atom::value, slot);
  });
  self->set_exit_handler([self](const caf::exit_msg& em) {
    for (auto& c : self->state.children)
      if (c)
        self->send_exit(c, em.reason);
    self->quit(em.reason);
  });
  return {
      [self, settings](restart_atom, int slot) {
        if (!self->state.children[static_cast<std::size_t>(slot)])
          start_writer(self, settings, slot);
      },
      [self, settings](tick_atom) { // sent by schedule_calm_check
        auto& st = self->state;
        if (!st.escalated)
          return;
        if (st.policy.escalated(self->clock().now()))
          return schedule_calm_check(self);
        st.escalated = false;
        log::info("writers calm again", {{"restarts", st.restarts}});
        publish(self, settings);
      },
  };
}

} // namespace postd::actors
