#include "actors/writer_supervisor.hpp"

#include <string>

namespace postd::actors {

supervisor_settings writer_pool(const writer_supervisor_settings& s) {
  supervisor_settings pool;
  pool.name = "writers";
  pool.max_restarts = s.max_restarts;
  pool.period = s.period;
  for (int i = 0; i < s.writers; ++i)
    pool.children.push_back(
        {"writer-" + std::to_string(i),
         counting_start(s.writer,
                        [detached = s.detached](caf::actor_system& sys,
                                                const writer_settings& w) {
                          return detached ? sys.spawn<caf::detached>(writer, w)
                                          : sys.spawn(writer, w);
                        }),
         {},
         {}});
  if (s.board)
    pool.report = [board = s.board,
                   writers = s.writers](const supervisor_status& status) {
      int running = 0;
      for (const auto& c : status.children)
        running += c.running ? 1 : 0;
      board->publish_writers(
          {writers, running, status.restarts, status.escalated});
    };
  return pool;
}

supervisor_actor::behavior_type
writer_supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
                  const writer_supervisor_settings& settings) {
  return supervisor(self, writer_pool(settings));
}

} // namespace postd::actors
