#include "actors/throttle.hpp"

namespace postd::actors {

namespace {

// Expired keys are swept at least this often (and once per window).
constexpr std::chrono::milliseconds max_sweep_interval{10000};

} // namespace

throttle_actor::behavior_type
throttle(throttle_actor::stateful_pointer<throttle_state> self,
         throttle_settings settings, enqueue_actor enqueue) {
  self->state.limiter = rate_limiter{settings.limit, settings.ttl};
  auto sweep_every = std::min(settings.ttl, max_sweep_interval);
  self->delayed_send(self, sweep_every, sweep_atom::value);
  return {
      [self, enqueue](create_request& req) {
        auto d = self->state.limiter.hit(req.throttle_key,
                                         rate_limiter::clock::now());
        if (!d.allowed) {
          req.reply(create_outcome{create_status::throttled, {}, d});
          return;
        }
        req.throttle = d;
        self->send(enqueue, std::move(req));
      },
      [self](throttle_request& req) {
        req.reply(self->state.limiter.hit(req.key, rate_limiter::clock::now()));
      },
      [self, sweep_every](sweep_atom) {
        self->state.limiter.sweep(rate_limiter::clock::now());
        self->delayed_send(self, sweep_every, sweep_atom::value);
      },
  };
}

} // namespace postd::actors
