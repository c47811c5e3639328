// The writer supervisor on the simulated clock: a crashed writer comes back
// after its slot's backoff (100 ms, doubling while it crashes without
// finishing a batch); more restarts than allowed within a period escalate
// (reported on the health board), and a whole calm period ends that.

#define CAF_SUITE writer_supervisor
#include <algorithm>

#include "actors/writer_supervisor.hpp"
#include "services_fixture.hpp"

using namespace postd;
using namespace std::chrono_literals;

namespace {

struct fixture : testing::services_fixture {
  std::shared_ptr<actors::health_board> board =
      std::make_shared<actors::health_board>();
  actors::writer_supervisor_actor sup;

  fixture() { queue->crash_on_take = "boom"; }
  ~fixture() override {
    anon_send_exit(sup, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void spawn_supervisor(int writers, int max_restarts,
                        std::chrono::milliseconds period) {
    actors::writer_supervisor_settings s;
    s.writers = writers;
    s.max_restarts = max_restarts;
    s.period = period;
    s.board = board;
    s.detached = false; // on the test scheduler
    s.writer.make_queue = testing::fake_queue_factory(queue);
    s.writer.make_store = testing::fake_store_factory(db);
    s.writer.block_for = 0ms;
    sup = sys.spawn(actors::writer_supervisor, s);
    sched.run();
  }
  // Moves the clock and lets everything due run (crashing writers stop on
  // their own; a writer that cannot reach Redis waits on a timer).
  // In steps of at most 100 ms, so periodic checks see each moment they
  // would see in real time (one big jump fires every due timer at its end).
  void pass(std::chrono::milliseconds d) {
    while (d > 0ms) {
      auto step = std::min(d, std::chrono::milliseconds{100});
      advance(step);
      sched.run();
      d -= step;
    }
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(writer_supervisor_tests, fixture)

CAF_TEST(a crashed writer restarts after its backoff which doubles) {
  spawn_supervisor(1, 100, 60000ms);
  // Started once, crashed on its first take.
  CAF_CHECK_EQUAL(queue->queues_made, 1);
  auto pool = board->writers();
  CAF_CHECK_EQUAL(pool.writers, 1);
  CAF_CHECK_EQUAL(pool.running, 0);
  CAF_CHECK_EQUAL(pool.restarts, 1);
  CAF_CHECK(!pool.escalated);
  pass(99ms);
  CAF_CHECK_EQUAL(queue->queues_made, 1);
  pass(1ms); // 100 ms after the crash: a new writer, a new connection
  CAF_CHECK_EQUAL(queue->queues_made, 2);
  CAF_CHECK_EQUAL(board->writers().restarts, 2);
  pass(199ms);
  CAF_CHECK_EQUAL(queue->queues_made, 2);
  pass(1ms); // 200 ms: doubled
  CAF_CHECK_EQUAL(queue->queues_made, 3);
  pass(399ms);
  CAF_CHECK_EQUAL(queue->queues_made, 3);
  // It stops crashing (Redis is down instead, which a writer waits out).
  queue->crash_on_take.clear();
  queue->down = true;
  pass(1ms);
  CAF_CHECK_EQUAL(queue->queues_made, 4);
  pool = board->writers();
  CAF_CHECK_EQUAL(pool.running, 1);
  CAF_CHECK_EQUAL(pool.restarts, 3);
  pass(10000ms);
  CAF_CHECK_EQUAL(queue->queues_made, 4); // no more restarts
}

CAF_TEST(each slot backs off on its own) {
  spawn_supervisor(2, 100, 60000ms);
  CAF_CHECK_EQUAL(queue->queues_made, 2);
  CAF_CHECK_EQUAL(board->writers().restarts, 2);
  pass(100ms); // both slots restart after their first 100 ms
  CAF_CHECK_EQUAL(queue->queues_made, 4);
  pass(200ms);
  CAF_CHECK_EQUAL(queue->queues_made, 6);
}

CAF_TEST(too many restarts escalate and a calm period ends it) {
  spawn_supervisor(1, 2, 10000ms);
  // Crashes at t=0, 100 ms, 300 ms: the third is over 2 per 10 s.
  CAF_CHECK(!board->writers().escalated);
  pass(100ms);
  CAF_CHECK(!board->writers().escalated);
  CAF_CHECK_EQUAL(board->writers().restarts, 2);
  pass(200ms);
  CAF_CHECK_EQUAL(board->writers().restarts, 3);
  CAF_CHECK(board->writers().escalated);
  // The writer started at 700 ms runs without crashing (it waits for Redis).
  queue->crash_on_take.clear();
  queue->down = true;
  pass(400ms);
  CAF_CHECK_EQUAL(queue->queues_made, 4);
  CAF_CHECK_EQUAL(board->writers().running, 1);
  CAF_CHECK(board->writers().escalated);
  // Checked every period / 10 from the escalation on (300 ms): at 10.3 s
  // the crash at 0 is older than a period and two remain: calm again.
  pass(9500ms); // t = 10.2 s
  CAF_CHECK(board->writers().escalated);
  pass(100ms); // t = 10.3 s
  CAF_CHECK(!board->writers().escalated);
  CAF_CHECK_EQUAL(board->writers().restarts, 3);
}

CAF_TEST(shutdown stops the writers and restarts none) {
  queue->crash_on_take.clear();
  queue->down = true;
  spawn_supervisor(2, 10, 60000ms);
  CAF_CHECK_EQUAL(board->writers().running, 2);
  anon_send_exit(sup, caf::exit_reason::user_shutdown);
  sched.run();
  pass(60000ms);
  CAF_CHECK_EQUAL(queue->queues_made, 2);
  CAF_CHECK_EQUAL(board->writers().restarts, 0);
}

CAF_TEST_FIXTURE_SCOPE_END()
