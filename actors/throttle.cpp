#include "actors/throttle.hpp"

#include "core/log.hpp"

namespace postd::actors {

namespace {

// Expired keys are swept at least this often (and once per window).
constexpr std::chrono::milliseconds max_sweep_interval{10000};

// An allowed create goes on to the enqueue actor running now.
template <class Self>
void forward(Self* self, const enqueue_lookup& enqueue, create_request&& req) {
  if (auto e = enqueue())
    return self->send(e, std::move(req));
  req.reply(create_outcome{create_status::unavailable, {}, req.throttle});
}

} // namespace

throttle_actor::behavior_type
throttle(throttle_actor::stateful_pointer<throttle_state> self,
         throttle_settings settings, const enqueue_lookup& enqueue) {
  self->state.limiter = core::rate_limiter{settings.limit, settings.ttl};
  auto sweep_every = std::min(settings.ttl, max_sweep_interval);
  self->delayed_send(self, sweep_every, sweep_atom::value);
  return {
      [self, enqueue](create_request& req) {
        auto d = self->state.limiter.hit(req.throttle_key, self->clock().now());
        if (!d.allowed) {
          req.reply(create_outcome{create_status::throttled, {}, d});
          return;
        }
        req.throttle = d;
        forward(self, enqueue, std::move(req));
      },
      [self](throttle_request& req) {
        req.reply(self->state.limiter.hit(req.key, self->clock().now()));
      },
      [](flush_atom) {
        // Only the Redis-backed throttle batches.
      },
      [self, sweep_every](sweep_atom) {
        self->state.limiter.sweep(self->clock().now());
        self->delayed_send(self, sweep_every, sweep_atom::value);
      },
  };
}

namespace {

using pending_hit = std::variant<create_request, throttle_request>;

const std::string& key_of(const pending_hit& hit) {
  if (const auto* c = std::get_if<create_request>(&hit))
    return c->throttle_key;
  return std::get<throttle_request>(hit).key;
}

// What a request is told while Redis cannot count: allowed, a full window.
core::throttle_decision
open_decision(const persistence::rate_limit_settings& s) {
  auto ttl_s = (s.ttl.count() + 999) / 1000;
  return {true, s.limit, s.limit, ttl_s, 0};
}

std::vector<core::throttle_decision>
decide(redis_throttle_state& st, const std::vector<pending_hit>& batch) {
  std::vector<std::string> keys;
  keys.reserve(batch.size());
  for (const auto& hit : batch)
    keys.push_back(key_of(hit));
  try {
    // The connection backs off after a failure: meanwhile this fails fast.
    auto decisions = st.store->hit_batch(keys);
    if (st.failing_open)
      log::info("rate limiting in redis again");
    st.failing_open = false;
    return decisions;
  } catch (const persistence::redis_error& e) {
    if (!st.failing_open)
      log::warn("rate limiter cannot reach redis: letting requests through",
                {{"error", e.what()}});
    st.failing_open = true;
  }
  std::vector<core::throttle_decision> open(batch.size(),
                                            open_decision(st.store->limits()));
  return open;
}

} // namespace

throttle_actor::behavior_type
redis_throttle(throttle_actor::stateful_pointer<redis_throttle_state> self,
               const redis_throttle_settings& settings,
               const enqueue_lookup& enqueue) {
  self->state.store = settings.make_store();
  auto push = [self](pending_hit hit) {
    if (self->state.pending.push(std::move(hit)))
      self->send(self, flush_atom::value);
  };
  return {
      [push](create_request& req) { push(std::move(req)); },
      [push](throttle_request& req) { push(std::move(req)); },
      [self, settings, enqueue](flush_atom) {
        auto batch = self->state.pending.take(settings.max_batch);
        auto decisions = decide(self->state, batch);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const auto& d = decisions[i];
          if (auto* c = std::get_if<create_request>(&batch[i])) {
            if (!d.allowed) {
              c->reply(create_outcome{create_status::throttled, {}, d});
              continue;
            }
            c->throttle = d;
            forward(self, enqueue, std::move(*c));
          } else {
            std::get<throttle_request>(batch[i]).reply(d);
          }
        }
        if (self->state.pending.reschedule())
          self->send(self, flush_atom::value);
      },
      [](sweep_atom) {
        // Redis expires idle keys itself.
      },
  };
}

} // namespace postd::actors
