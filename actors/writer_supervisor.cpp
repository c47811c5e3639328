#include "actors/writer_supervisor.hpp"

#include "app/log.hpp"

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
  auto child = self->spawn<caf::detached + caf::monitored>(writer, s.writer);
  self->state.children[static_cast<std::size_t>(slot)] = child;
  self->state.slots[child.address()] = slot;
  publish(self, s);
}

} // namespace

writer_supervisor_actor::behavior_type
writer_supervisor(self_ptr self, writer_supervisor_settings settings) {
  auto& st = self->state;
  st.intensity = restart_intensity{settings.max_restarts, settings.period};
  st.children.resize(static_cast<std::size_t>(settings.writers));
  st.delays.assign(static_cast<std::size_t>(settings.writers),
                   backoff{std::chrono::milliseconds{100},
                           std::chrono::milliseconds{10000}});
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
    bool calm = st.intensity.record(restart_intensity::clock::now());
    if (!calm && !st.escalated)
      log::error("writers keep crashing: escalating",
                 {{"restarts", st.restarts}, {"reason", to_string(dm.reason)}});
    st.escalated = !calm;
    auto delay = st.delays[static_cast<std::size_t>(slot)].next();
    log::warn("writer crashed, restarting", {{"slot", slot},
                                             {"reason", to_string(dm.reason)},
                                             {"delay_ms", delay.count()}});
    publish(self, settings);
    self->delayed_send(self, delay, restart_atom::value, slot);
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
  };
}

} // namespace postd::actors
