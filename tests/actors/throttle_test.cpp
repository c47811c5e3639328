// Both throttles on the simulated clock. In memory: the limit per key, the
// block for one window, a create passed on to the enqueue actor with its
// decision. In Redis (a fake store): one round trip per batch, and while the
// store cannot count, requests go through (fail open).

#define CAF_SUITE throttle
#include "actors/enqueue.hpp"
#include "actors/throttle.hpp"
#include "services_fixture.hpp"

using namespace postd;
using namespace std::chrono_literals;

namespace {

struct fixture : testing::services_fixture {
  std::shared_ptr<std::vector<core::throttle_decision>> decisions =
      std::make_shared<std::vector<core::throttle_decision>>();
  actors::enqueue_actor enqueue;
  // As the directory answers: the enqueue actor running now, if any.
  actors::enqueue_lookup find_enqueue = [this] { return enqueue; };

  fixture() {
    actors::enqueue_settings s;
    s.make_queue = testing::fake_queue_factory(queue);
    enqueue = sys.spawn(actors::enqueue, s);
    sched.run();
  }

  actors::throttle_request check(const std::string& key) {
    auto out = decisions;
    return {key, [out](std::optional<core::throttle_decision> d) {
              out->push_back(d.value());
            }};
  }
  const core::throttle_decision& last() const { return decisions->back(); }
};

int status(const actors::create_outcome& o) {
  return static_cast<int>(o.status);
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(throttle_tests, fixture)

CAF_TEST(limits each key and blocks it for one window) {
  auto t = sys.spawn(actors::throttle, actors::throttle_settings{2, 1000ms},
                     find_enqueue);
  for (const char* key : {"a", "a", "b", "a"})
    self->send(t, check(key));
  sched.run();
  CAF_REQUIRE_EQUAL(decisions->size(), 4u);
  const auto& d = *decisions;
  CAF_CHECK(d[0].allowed);
  CAF_CHECK_EQUAL(d[0].remaining, 1);
  CAF_CHECK(d[1].allowed);
  CAF_CHECK_EQUAL(d[1].remaining, 0);
  CAF_CHECK(d[2].allowed); // another key counts alone
  CAF_CHECK_EQUAL(d[2].remaining, 1);
  CAF_CHECK(!d[3].allowed);
  CAF_CHECK_EQUAL(d[3].limit, 2);
  CAF_CHECK_EQUAL(d[3].retry_after_s, 1);
  // Blocked for the whole window, however the hits' own window goes.
  advance(999ms);
  self->send(t, check("a"));
  sched.run();
  CAF_CHECK(!last().allowed);
  advance(1ms);
  self->send(t, check("a"));
  sched.run();
  CAF_CHECK(last().allowed); // the count starts over
  CAF_CHECK_EQUAL(last().remaining, 1);
  anon_send_exit(t, caf::exit_reason::user_shutdown);
}

CAF_TEST(an allowed create goes on to enqueue and a refused one is answered) {
  auto t = sys.spawn(actors::throttle, actors::throttle_settings{1, 60000ms},
                     find_enqueue);
  self->send(t, create("ip-1"));
  self->send(t, create("ip-1"));
  sched.run();
  CAF_REQUIRE_EQUAL(outcomes->size(), 2u);
  // Which is answered first depends on the enqueue's round trip.
  auto throttled = static_cast<int>(actors::create_status::throttled);
  const auto& refused =
      status((*outcomes)[0]) == throttled ? (*outcomes)[0] : (*outcomes)[1];
  const auto& queued =
      &refused == &(*outcomes)[0] ? (*outcomes)[1] : (*outcomes)[0];
  CAF_CHECK_EQUAL(status(refused), throttled);
  CAF_CHECK_EQUAL(refused.throttle.retry_after_s, 60);
  CAF_CHECK_EQUAL(status(queued),
                  static_cast<int>(actors::create_status::queued));
  CAF_CHECK_EQUAL(queued.job_id, "1");
  CAF_CHECK_EQUAL(queued.throttle.remaining, 0);
  CAF_REQUIRE_EQUAL(queue->added.size(), 1u);
  CAF_CHECK_EQUAL(queue->added[0].size(), 1u);
  anon_send_exit(t, caf::exit_reason::user_shutdown);
}

CAF_TEST(a create while the enqueue actor restarts is answered at once) {
  auto t = sys.spawn(actors::throttle, actors::throttle_settings{5, 60000ms},
                     find_enqueue);
  auto running = enqueue;
  enqueue = actors::enqueue_actor{}; // its supervisor withdrew it
  self->send(t, create("ip-1"));
  sched.run();
  CAF_REQUIRE_EQUAL(outcomes->size(), 1u);
  CAF_CHECK_EQUAL(status(outcomes->back()),
                  static_cast<int>(actors::create_status::unavailable));
  CAF_CHECK_EQUAL(outcomes->back().throttle.remaining, 4); // it was counted
  CAF_CHECK(queue->added.empty());
  enqueue = running; // restarted: found again
  self->send(t, create("ip-1"));
  sched.run();
  CAF_REQUIRE_EQUAL(outcomes->size(), 2u);
  CAF_CHECK_EQUAL(status(outcomes->back()),
                  static_cast<int>(actors::create_status::queued));
  anon_send_exit(t, caf::exit_reason::user_shutdown);
}

CAF_TEST(the redis throttle batches hits and fails open while down) {
  auto rate = std::make_shared<testing::fake_rate_state>();
  actors::redis_throttle_settings s;
  s.make_store = [rate] {
    return std::make_unique<testing::fake_rate_limit_store>(rate);
  };
  auto t = sys.spawn(actors::redis_throttle, s, find_enqueue);
  for (const char* key : {"a", "a", "a"})
    self->send(t, check(key));
  sched.run();
  CAF_REQUIRE_EQUAL(rate->calls.size(), 1u); // one round trip
  CAF_CHECK_EQUAL(rate->calls[0], (std::vector<std::string>{"a", "a", "a"}));
  CAF_REQUIRE_EQUAL(decisions->size(), 3u);
  CAF_CHECK((*decisions)[1].allowed);
  CAF_CHECK(!(*decisions)[2].allowed);
  // Down: everything through, with a full window's numbers.
  rate->down = true;
  self->send(t, check("a"));
  self->send(t, create("a"));
  sched.run();
  CAF_REQUIRE_EQUAL(decisions->size(), 4u);
  CAF_CHECK(last().allowed);
  CAF_CHECK_EQUAL(last().limit, 2);
  CAF_CHECK_EQUAL(last().remaining, 2);
  CAF_CHECK_EQUAL(last().reset_s, 60);
  CAF_REQUIRE_EQUAL(outcomes->size(), 1u);
  CAF_CHECK_EQUAL(status((*outcomes)[0]),
                  static_cast<int>(actors::create_status::queued));
  // Back: counted again (the hits made while down were not).
  rate->down = false;
  self->send(t, check("a"));
  sched.run();
  CAF_CHECK(!last().allowed);
  CAF_CHECK_EQUAL(rate->hits["a"], 4);
  anon_send_exit(t, caf::exit_reason::user_shutdown);
}

CAF_TEST_FIXTURE_SCOPE_END()
