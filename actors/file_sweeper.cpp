#include "actors/file_sweeper.hpp"

#include "actors/protocol.hpp"
#include "core/log.hpp"

namespace postd::actors {

caf::behavior file_sweeper(caf::stateful_actor<file_sweeper_state>* self,
                           const file_sweeper_settings& settings) {
  self->state.redis =
      std::make_unique<persistence::redis_connection>(settings.redis);
  // The first round soon after the start: orphans of a crash go early.
  self->delayed_send(self,
                     std::min(settings.every, std::chrono::milliseconds{30000}),
                     sweep_atom::value);
  return {
      [self, settings](sweep_atom) {
        auto& st = self->state;
        auto report = persistence::sweep_orphan_files(
            settings.options, *st.redis, st.resume_after);
        st.resume_after = report.resume_after;
        if (!report.error.empty() && report.removed == 0 &&
            report.examined == 0) {
          if (!st.failing)
            log::warn("attachment sweep skipped",
                      {{"actor", "file_sweeper"}, {"error", report.error}});
          st.failing = true;
        } else {
          if (st.failing)
            log::info("attachment sweep again", {{"actor", "file_sweeper"}});
          st.failing = false;
          if (report.removed > 0 || report.failed > 0)
            log::info("attachments swept",
                      {{"actor", "file_sweeper"},
                       {"examined", report.examined},
                       {"removed", report.removed},
                       {"kept_referenced", report.kept_referenced},
                       {"kept_pending", report.kept_pending},
                       {"failed", report.failed},
                       {"error", report.error}});
        }
        // A round that stopped at max_files goes on at once with the rest.
        bool more = report.error.empty() && !report.resume_after.empty();
        self->delayed_send(
            self,
            more ? std::min(settings.every, std::chrono::milliseconds{1000})
                 : settings.every,
            sweep_atom::value);
      },
  };
}

} // namespace postd::actors
