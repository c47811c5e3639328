// The supervisor on the simulated clock, with children of different kinds as
// the root supervisor has them: each started in order and listed where
// senders find it, a crashed one withdrawn at once and restarted after its
// backoff under a new handle, a normal exit left alone, escalation past the
// restart intensity, and shutdown stopping (and withdrawing) every child.

#define CAF_SUITE supervisor
#include <stdexcept>

#include "actor_fixture.hpp"
#include "actors/directory.hpp"
#include "actors/supervisor.hpp"

using namespace postd;
using namespace std::chrono_literals;

namespace {

// A child that crashes on -1, exits normally on 0 and else answers its index.
// (It takes an argument because CAF 0.17 binds a null tuple for a spawn
// without any: undefined behaviour that UBSan reports.)
caf::behavior child(caf::event_based_actor* self, int index) {
  return {
      [self, index](int x) {
        if (x < 0)
          throw std::runtime_error("boom");
        if (x == 0)
          self->quit();
        return index;
      },
  };
}

struct fixture : testing::actor_fixture {
  // Where the children are listed, as the HTTP side reads it.
  std::vector<std::shared_ptr<actors::actor_entry<caf::actor>>> listed;
  std::vector<int> starts;
  actors::supervisor_status last;
  int reports = 0;
  actors::supervisor_actor sup;

  ~fixture() override {
    if (sup) {
      anon_send_exit(sup, caf::exit_reason::user_shutdown);
      sched.run();
    }
  }

  actors::supervisor_settings settings(int children, int max_restarts = 10) {
    actors::supervisor_settings s;
    s.name = "test";
    s.max_restarts = max_restarts;
    s.period = 60000ms;
    starts.assign(static_cast<std::size_t>(children), 0);
    for (int i = 0; i < children; ++i) {
      auto entry = std::make_shared<actors::actor_entry<caf::actor>>();
      listed.push_back(entry);
      s.children.push_back(
          {"child-" + std::to_string(i),
           [this, i](caf::actor_system& system) {
             ++starts[static_cast<std::size_t>(i)];
             return actors::started_child{system.spawn(child, i), {}};
           },
           [entry](const caf::actor& a) { entry->set(a); },
           [entry] { entry->clear(); }});
    }
    s.report = [this](const actors::supervisor_status& st) {
      last = st;
      ++reports;
    };
    return s;
  }

  void start(actors::supervisor_settings s) {
    sup = sys.spawn(actors::supervisor, std::move(s));
    sched.run();
  }
  caf::actor at(std::size_t i) const { return listed[i]->get(); }
  void tell(std::size_t i, int x) {
    anon_send(at(i), x);
    sched.run();
  }
  void pass(std::chrono::milliseconds d) {
    while (d > 0ms) {
      auto step = std::min(d, std::chrono::milliseconds{10});
      advance(step);
      sched.run();
      d -= step;
    }
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(supervisor_tests, fixture)

CAF_TEST(starts every child and lists it) {
  start(settings(3));
  CAF_CHECK_EQUAL(starts, (std::vector<int>{1, 1, 1}));
  for (std::size_t i = 0; i < 3; ++i)
    CAF_CHECK(at(i));
  CAF_REQUIRE_EQUAL(last.children.size(), 3u);
  CAF_CHECK_EQUAL(last.children[1].name, "child-1");
  CAF_CHECK(last.children[1].running);
  CAF_CHECK_EQUAL(last.restarts, 0);
  CAF_CHECK(!last.escalated);
}

CAF_TEST(a crashed child is withdrawn at once and restarted after its backoff) {
  start(settings(2));
  auto first = at(0);
  auto other = at(1);
  tell(0, -1);       // crashes
  CAF_CHECK(!at(0)); // senders see it missing: they answer 503 themselves
  CAF_CHECK(!last.children[0].running);
  CAF_CHECK_EQUAL(last.children[0].restarts, 1);
  CAF_CHECK_EQUAL(last.restarts, 1);
  CAF_CHECK(at(1) == other); // the others are untouched
  pass(90ms);
  CAF_CHECK(!at(0));
  pass(10ms); // 100 ms: back, under a new handle
  CAF_REQUIRE(at(0));
  CAF_CHECK(at(0) != first);
  CAF_CHECK_EQUAL(starts, (std::vector<int>{2, 1}));
  CAF_CHECK(last.children[0].running);
  // Crashing again at once: the backoff doubles.
  tell(0, -1);
  pass(190ms);
  CAF_CHECK(!at(0));
  pass(10ms);
  CAF_CHECK(at(0));
  CAF_CHECK_EQUAL(last.children[0].restarts, 2);
}

CAF_TEST(a child that exits normally is not restarted) {
  start(settings(1));
  tell(0, 0);
  CAF_CHECK(!at(0));
  pass(20000ms);
  CAF_CHECK(!at(0));
  CAF_CHECK_EQUAL(starts, (std::vector<int>{1}));
  CAF_CHECK_EQUAL(last.restarts, 0);
}

CAF_TEST(too many restarts escalate until a calm period passed) {
  start(settings(1, 2));
  for (int i = 0; i < 3; ++i) {
    tell(0, -1);
    pass(10000ms); // past any backoff: running again
    CAF_REQUIRE(at(0));
  }
  CAF_CHECK(last.escalated); // 3 restarts > 2 within the period
  // Restarts go on while escalated: the actors are what serves requests.
  CAF_CHECK_EQUAL(starts, (std::vector<int>{4}));
  pass(60000ms);
  CAF_CHECK(!last.escalated);
}

CAF_TEST(shutdown stops and withdraws every child) {
  start(settings(2));
  auto a = at(0);
  auto b = at(1);
  anon_send_exit(sup, caf::exit_reason::user_shutdown);
  sched.run();
  CAF_CHECK(!at(0));
  CAF_CHECK(!at(1));
  pass(1000ms);
  CAF_CHECK_EQUAL(starts, (std::vector<int>{1, 1})); // none restarted
  // Both are gone: a message to either is not processed.
  CAF_CHECK(a->getf(caf::abstract_actor::is_terminated_flag));
  CAF_CHECK(b->getf(caf::abstract_actor::is_terminated_flag));
  sup = actors::supervisor_actor{};
}

CAF_TEST_FIXTURE_SCOPE_END()
