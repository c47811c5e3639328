// The enqueue actor on the deterministic scheduler with an in-memory queue:
// what arrives together goes out in one add_jobs call, and each request is
// answered from the queue's result for its own job.

#define CAF_SUITE enqueue
#include <nlohmann/json.hpp>

#include "actors/enqueue.hpp"
#include "services_fixture.hpp"

using namespace postd;
using postd::actors::create_status;

namespace {

struct fixture : testing::services_fixture {
  // With `recovery`, the actor keeps its 202s there.
  std::shared_ptr<actors::ack_log> recovery;

  actors::enqueue_actor spawn_enqueue(std::size_t max_batch = 512,
                                      int ack_replicas = 0) {
    actors::enqueue_settings s;
    s.recovery = recovery;
    s.ack_replicas = ack_replicas;
    s.ack_timeout = std::chrono::milliseconds{70};
    s.make_queue = testing::fake_queue_factory(queue);
    s.attempts = 5;
    s.backoff_ms = 250;
    s.max_batch = max_batch;
    return sys.spawn(actors::enqueue, s);
  }
  // Three creates in one batch that Redis answers added, duplicate (an
  // idempotency key seen before) and queue full.
  void send_added_duplicate_full(const actors::enqueue_actor& enq) {
    queue->statuses = {persistence::add_status::added,
                       persistence::add_status::duplicate,
                       persistence::add_status::queue_full};
    sched.run();
    self->send(enq, request("alice", "new"));
    self->send(enq, request("alice", "again", "k"));
    self->send(enq, request("carol", "too many"));
    sched.run();
  }
  // Ends an actor with a recovery log (its tick would repeat for ever).
  void stop(const actors::enqueue_actor& enq) {
    anon_send_exit(enq, caf::exit_reason::user_shutdown);
    sched.run();
  }
  // As the throttle actor passes it on: keyed by the author, with its
  // decision.
  actors::create_request request(const std::string& author,
                                 const std::string& content,
                                 const std::string& idem = "") const {
    auto r = create("ip:" + author, {author, content, idem});
    r.throttle = {true, 100, 42, 60, 0};
    return r;
  }
};

// The postId in a job's data.
std::string post_id_of(const persistence::job_request& j) {
  return nlohmann::json::parse(j.data)["postId"].get<std::string>();
}

int status(const actors::create_outcome& o) {
  return static_cast<int>(o.status);
}
constexpr int queued = static_cast<int>(create_status::queued);
constexpr int duplicate = static_cast<int>(create_status::duplicate);
constexpr int queue_full = static_cast<int>(create_status::queue_full);
constexpr int unavailable = static_cast<int>(create_status::unavailable);
constexpr int unconfirmed = static_cast<int>(create_status::unconfirmed);

} // namespace

CAF_TEST_FIXTURE_SCOPE(enqueue_tests, fixture)

CAF_TEST(requests that arrive together go out in one batch) {
  auto enq = spawn_enqueue();
  sched.run();
  // All three are in the mailbox before the actor runs: the flush the first
  // one schedules is queued behind the other two.
  self->send(enq, request("alice", "one", "k-1"));
  self->send(enq, request("bob", "two"));
  self->send(enq, request("alice", "three"));
  sched.run();
  CAF_REQUIRE_EQUAL(queue->added.size(), 1u);
  const auto& jobs = queue->added[0];
  CAF_REQUIRE_EQUAL(jobs.size(), 3u);
  CAF_CHECK_EQUAL(jobs[0].author, "alice");
  CAF_CHECK_EQUAL(jobs[0].idempotency_key, "k-1");
  CAF_CHECK_EQUAL(jobs[1].author, "bob");
  CAF_CHECK_EQUAL(jobs[1].idempotency_key, "");
  CAF_CHECK_EQUAL(jobs[2].author, "alice");
  for (const auto& j : jobs) {
    CAF_CHECK_EQUAL(j.attempts, 5);
    CAF_CHECK_EQUAL(j.backoff_ms, 250);
  }
  auto data = nlohmann::json::parse(jobs[1].data);
  CAF_CHECK_EQUAL(data["postData"]["content"].get<std::string>(), "two");
  CAF_CHECK_EQUAL(data["userId"].get<std::string>(), "bob");
  CAF_CHECK_EQUAL(data["postId"].get<std::string>().size(), 36u);
  // Each request gets its own job's id, in order, and its throttle decision.
  CAF_REQUIRE_EQUAL(outcomes->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    CAF_CHECK_EQUAL(status((*outcomes)[i]), queued);
    CAF_CHECK_EQUAL((*outcomes)[i].job_id, std::to_string(i + 1));
    CAF_CHECK_EQUAL((*outcomes)[i].throttle.remaining, 42);
  }
}

CAF_TEST(a batch is capped at max_batch and the rest follows at once) {
  auto enq = spawn_enqueue(2);
  sched.run();
  for (int i = 0; i < 5; ++i)
    self->send(enq, request("alice", "post " + std::to_string(i)));
  sched.run();
  CAF_REQUIRE_EQUAL(queue->added.size(), 3u);
  CAF_CHECK_EQUAL(queue->added[0].size(), 2u);
  CAF_CHECK_EQUAL(queue->added[1].size(), 2u);
  CAF_CHECK_EQUAL(queue->added[2].size(), 1u);
  CAF_CHECK_EQUAL(outcomes->size(), 5u);
}

CAF_TEST(each request is answered from its own job s result) {
  auto enq = spawn_enqueue();
  send_added_duplicate_full(enq);
  CAF_REQUIRE_EQUAL(outcomes->size(), 3u);
  CAF_CHECK_EQUAL(status((*outcomes)[0]), queued);
  CAF_CHECK_EQUAL((*outcomes)[0].job_id, "1");
  CAF_CHECK_EQUAL(status((*outcomes)[1]), duplicate);
  CAF_CHECK_EQUAL((*outcomes)[1].job_id, "2");
  // queue_full: nothing was written; HTTP answers it 503.
  CAF_CHECK_EQUAL(status((*outcomes)[2]), queue_full);
  CAF_CHECK_EQUAL((*outcomes)[2].job_id, "");
}

CAF_TEST(redis down answers unavailable and recovers without a restart) {
  queue->down = true;
  auto enq = spawn_enqueue();
  sched.run();
  self->send(enq, request("alice", "one"));
  self->send(enq, request("bob", "two"));
  sched.run();
  CAF_CHECK_EQUAL(queue->added.size(), 0u);
  CAF_REQUIRE_EQUAL(outcomes->size(), 2u);
  for (const auto& r : *outcomes) {
    CAF_CHECK_EQUAL(status(r), unavailable);
    CAF_CHECK_EQUAL(r.job_id, "");
  }
  queue->down = false;
  self->send(enq, request("alice", "three"));
  sched.run();
  CAF_REQUIRE_EQUAL(outcomes->size(), 3u);
  CAF_CHECK_EQUAL(status((*outcomes)[2]), queued);
  CAF_CHECK_EQUAL((*outcomes)[2].job_id, "1");
  CAF_CHECK_EQUAL(queue->queues_made, 1); // the queue's connection reconnects
}

CAF_TEST(without ack_replicas no batch waits for replicas) {
  auto enq = spawn_enqueue();
  sched.run();
  self->send(enq, request("alice", "one"));
  sched.run();
  CAF_CHECK(queue->waits.empty());
  CAF_REQUIRE_EQUAL(outcomes->size(), 1u);
  CAF_CHECK_EQUAL(status((*outcomes)[0]), queued);
}

CAF_TEST(
    ack_replicas waits once per batch and confirms what the replicas have) {
  queue->replicas_confirming = 2;
  auto enq = spawn_enqueue(512, 2);
  sched.run();
  self->send(enq, request("alice", "one"));
  self->send(enq, request("bob", "two"));
  sched.run();
  CAF_REQUIRE_EQUAL(queue->waits.size(), 1u);
  CAF_CHECK_EQUAL(queue->waits[0].first, 2);
  CAF_CHECK_EQUAL(queue->waits[0].second.count(), 70);
  CAF_REQUIRE_EQUAL(outcomes->size(), 2u);
  for (const auto& r : *outcomes)
    CAF_CHECK_EQUAL(status(r), queued);
}

CAF_TEST(
    a batch fewer replicas confirmed is answered unconfirmed with its ids) {
  queue->replicas_confirming = 1;
  queue->statuses = {persistence::add_status::added,
                     persistence::add_status::duplicate,
                     persistence::add_status::queue_full};
  auto enq = spawn_enqueue(512, 2);
  sched.run();
  self->send(enq, request("alice", "new"));
  self->send(enq, request("alice", "again", "k"));
  self->send(enq, request("carol", "too many"));
  sched.run();
  CAF_REQUIRE_EQUAL(outcomes->size(), 3u);
  CAF_CHECK_EQUAL(status((*outcomes)[0]), unconfirmed);
  CAF_CHECK_EQUAL((*outcomes)[0].job_id, "1");
  CAF_CHECK_EQUAL(status((*outcomes)[1]), unconfirmed);
  CAF_CHECK_EQUAL((*outcomes)[1].job_id, "2");
  // Nothing of it was written: nothing to confirm.
  CAF_CHECK_EQUAL(status((*outcomes)[2]), queue_full);
  // A connection lost during the WAIT confirms nothing either.
  queue->replicas_confirming = -1;
  self->send(enq, request("dave", "lost"));
  sched.run();
  CAF_REQUIRE_EQUAL(outcomes->size(), 4u);
  CAF_CHECK_EQUAL(status((*outcomes)[3]), unconfirmed);
  CAF_CHECK_EQUAL((*outcomes)[3].job_id, "3"); // queue_full took no id
}

CAF_TEST(a batch with nothing written does not wait) {
  queue->statuses = {persistence::add_status::queue_full};
  auto enq = spawn_enqueue(512, 1);
  sched.run();
  self->send(enq, request("alice", "too many"));
  sched.run();
  CAF_CHECK(queue->waits.empty());
  CAF_REQUIRE_EQUAL(outcomes->size(), 1u);
  CAF_CHECK_EQUAL(status((*outcomes)[0]), queue_full);
}

CAF_TEST(a new connection gets back the acknowledged jobs it lacks) {
  recovery =
      std::make_shared<actors::ack_log>(std::chrono::seconds{30}, 1U << 20U);
  auto enq = spawn_enqueue();
  sched.run();
  self->send(enq, request("alice", "one"));
  self->send(enq, request("bob", "two"));
  self->send(enq, request("carol", "three", "k-3"));
  sched.run();
  CAF_REQUIRE_EQUAL(queue->added.size(), 1u);
  CAF_CHECK_EQUAL(recovery->jobs().size(), 3u);
  CAF_CHECK(queue->checked.empty()); // the same connection: nothing to check
  const auto lost = queue->added[0][1];

  // A failover: the new master lacks bob's job.
  queue->connections = 2;
  queue->lost = {post_id_of(lost)};
  self->send(enq, request("dave", "four"));
  sched.run();
  CAF_REQUIRE_EQUAL(queue->checked.size(), 1u);
  CAF_CHECK_EQUAL(queue->checked[0].size(), 4u);
  CAF_CHECK_EQUAL(queue->checked[0][1].first, "2");
  CAF_CHECK_EQUAL(queue->checked[0][1].second, post_id_of(lost));
  CAF_REQUIRE_EQUAL(queue->added.size(), 3u); // the batch, then the re-add
  CAF_REQUIRE_EQUAL(queue->added[2].size(), 1u);
  CAF_CHECK_EQUAL(queue->added[2][0].data, lost.data); // the same postId
  CAF_CHECK_EQUAL(queue->added[2][0].author, "bob");
  // Under the id its 202 gave, and with the counter kept above every id
  // this actor was given (the new master's may be behind).
  CAF_CHECK_EQUAL(queue->added[2][0].job_id, "2");
  CAF_CHECK(queue->added[1][0].job_id.empty());
  CAF_REQUIRE_EQUAL(queue->id_floors.size(), 3u);
  CAF_CHECK_EQUAL(queue->id_floors[0], 0);
  CAF_CHECK_EQUAL(queue->id_floors[1], 3);
  CAF_CHECK_EQUAL(queue->id_floors[2], 4);
  // Logged where it is now, and checked once per connection only.
  CAF_CHECK_EQUAL(recovery->jobs()[1].job_id, "2");
  self->send(enq, request("erin", "five"));
  sched.run();
  CAF_CHECK_EQUAL(queue->checked.size(), 1u);
  CAF_CHECK_EQUAL(queue->added.size(), 4u);
  stop(enq); // its tick repeats
}

CAF_TEST(an idle actor checks a new connection on its tick) {
  recovery =
      std::make_shared<actors::ack_log>(std::chrono::seconds{30}, 1U << 20U);
  auto enq = spawn_enqueue();
  sched.run();
  self->send(enq, request("alice", "one"));
  sched.run();
  queue->connections = 2;
  queue->lost = {post_id_of(queue->added[0][0])};
  advance(std::chrono::milliseconds{1000});
  sched.run();
  CAF_CHECK(queue->pings > 0);
  CAF_REQUIRE_EQUAL(queue->added.size(), 2u);
  CAF_CHECK_EQUAL(queue->added[1][0].data, queue->added[0][0].data);
  stop(enq);
}

CAF_TEST(only jobs this actor added and acknowledged are logged) {
  recovery =
      std::make_shared<actors::ack_log>(std::chrono::seconds{30}, 1U << 20U);
  auto enq = spawn_enqueue();
  send_added_duplicate_full(enq);
  CAF_REQUIRE_EQUAL(recovery->jobs().size(), 1u);
  CAF_CHECK_EQUAL(recovery->jobs()[0].job_id, "1");
  // Unconfirmed by the replicas: answered 503, not logged.
  stop(enq);
  queue->replicas_confirming = 0;
  auto acking = spawn_enqueue(512, 1);
  sched.run();
  self->send(acking, request("dave", "unconfirmed"));
  sched.run();
  CAF_CHECK_EQUAL(recovery->jobs().size(), 1u);
  stop(acking);
}

CAF_TEST_FIXTURE_SCOPE_END()
