#include "actors/supervisor.hpp"

#include "core/log.hpp"

namespace postd::actors {

namespace {

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

void report(self_ptr self, const supervisor_settings& s) {
  if (!s.report)
    return;
  const auto& st = self->state;
  supervisor_status status;
  status.restarts = st.restarts;
  status.escalated = st.escalated;
  for (std::size_t i = 0; i < s.children.size(); ++i)
    status.children.push_back({s.children[i].name,
                               static_cast<bool>(st.children[i]),
                               st.restarts_of[i]});
  s.report(status);
}

void start_child(self_ptr self, const supervisor_settings& s, std::size_t i) {
  auto& st = self->state;
  const auto& spec = s.children[i];
  auto child = spec.start(self->system());
  // Monitoring a child that already died still delivers its down message.
  self->monitor(child.handle);
  st.index_of[child.handle.address()] = i;
  st.children[i] = child.handle;
  st.progress[i] = std::move(child.made_progress);
  st.policy.started(static_cast<int>(i), self->clock().now());
  if (spec.on_start)
    spec.on_start(child.handle);
  report(self, s);
}

// While escalated, ten times a period: has a whole period gone calmly?
void schedule_calm_check(self_ptr self) {
  self->delayed_send(self, self->state.policy.period() / 10, tick_atom::value);
}

void on_down(self_ptr self, const supervisor_settings& s,
             const caf::down_msg& dm) {
  auto& st = self->state;
  auto it = st.index_of.find(dm.source);
  if (it == st.index_of.end())
    return;
  auto i = it->second;
  st.index_of.erase(it);
  st.children[i] = caf::actor{};
  const auto& spec = s.children[i];
  if (spec.on_stop)
    spec.on_stop();
  if (!dm.reason)
    return report(self, s); // a normal exit is a requested stop
  ++st.restarts;
  ++st.restarts_of[i];
  bool progressed = st.progress[i] && st.progress[i]();
  auto d =
      st.policy.crashed(static_cast<int>(i), self->clock().now(), progressed);
  if (d.escalated && !st.escalated) {
    log::error("actors keep crashing: escalating",
               {{"supervisor", s.name},
                {"restarts", st.restarts},
                {"reason", to_string(dm.reason)}});
    schedule_calm_check(self);
  }
  st.escalated = st.escalated || d.escalated;
  log::warn("actor crashed, restarting", {{"supervisor", s.name},
                                          {"actor", spec.name},
                                          {"reason", to_string(dm.reason)},
                                          {"delay_ms", d.delay.count()}});
  report(self, s);
  self->delayed_send(self, d.delay, restart_atom::value, static_cast<int>(i));
}

} // namespace

supervisor_actor::behavior_type
supervisor(self_ptr self, const supervisor_settings& settings) {
  auto& st = self->state;
  auto n = settings.children.size();
  st.policy = core::restart_policy{static_cast<int>(n), settings.max_restarts,
                                   settings.period};
  st.children.resize(n);
  st.progress.resize(n);
  st.restarts_of.assign(n, 0);
  for (std::size_t i = 0; i < n; ++i)
    start_child(self, settings, i);
  self->set_down_handler([self, settings](const caf::down_msg& dm) {
    on_down(self, settings, dm);
  });
  self->set_exit_handler([self, settings](const caf::exit_msg& em) {
    auto& children = self->state.children;
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (!children[i])
        continue;
      // Withdrawn first: from now on senders answer 503 themselves.
      if (const auto& stop = settings.children[i].on_stop)
        stop();
      self->send_exit(children[i], em.reason);
    }
    self->quit(em.reason);
  });
  return {
      [self, settings](restart_atom, int slot) {
        auto i = static_cast<std::size_t>(slot);
        if (i < self->state.children.size() && !self->state.children[i])
          start_child(self, settings, i);
      },
      [self, settings](tick_atom) { // sent by schedule_calm_check
        auto& st = self->state;
        if (!st.escalated)
          return;
        if (st.policy.escalated(self->clock().now()))
          return schedule_calm_check(self);
        st.escalated = false;
        log::info("actors calm again",
                  {{"supervisor", settings.name}, {"restarts", st.restarts}});
        report(self, settings);
      },
  };
}

} // namespace postd::actors
