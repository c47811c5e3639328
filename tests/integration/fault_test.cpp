// Fault injection end to end (SPEC §6): under a load of creates, a fault in
// the middle (postd killed with -9, PostgreSQL down, Redis restarted, writers
// crashing), recovery, then: every job answered 202 is exactly one row in
// "Post", nothing is left active and nothing failed. Requests answered
// otherwise during the fault (503, refused connections) were not
// acknowledged; a request whose answer never came may or may not have been
// queued, so at most that many extra rows are allowed (and reported). Last,
// the same promise at volume without a fault (20,000 posts).
//
// Tests that stop Redis or PostgreSQL run their own instances (under
// POSTD_TEST_SERVICES_DIR), never the shared ones.

#include <algorithm>
#include <atomic>
#include <csignal>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http/auth.hpp"
#include "persistence/bull_queue.hpp"
#include "persistence/postgres.hpp"
#include "persistence/redis_client.hpp"
#include "support/eventually.hpp"
#include "support/pg_process.hpp"
#include "support/post_load.hpp"
#include "support/raw_client.hpp"
#include "support/redis_process.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* secret = load_secret;

// The lines of `text` that contain every one of `parts`.
std::size_t count_lines(const std::string& text,
                        const std::vector<std::string>& parts) {
  std::size_t n = 0;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    n += std::all_of(parts.begin(), parts.end(),
                     [&](const std::string& p) {
                       return line.find(p) != std::string::npos;
                     })
             ? 1
             : 0;
  return n;
}

struct FaultTest : ::testing::Test {
  std::string queue = unique_name("fq");
  std::chrono::steady_clock::time_point started =
      std::chrono::steady_clock::now();

  // postd's environment for a load on `db`: the test's own `settings`, and
  // fault_env's for what they leave out.
  env_map env_for(const scratch_database& db, env_map settings = {}) const {
    settings.merge(fault_env(postd_env(db, queue, secret)));
    return settings;
  }

  void migrate(const env_map& e) {
    auto r = run_postd({"migrate"}, e);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  void mark(const std::string& what) const {
    std::cout << "[ fault    ] "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count()
              << " ms: " << what << std::endl;
  }
  // How every load test ends: the load runs out (its in-flight creates
  // too), each acknowledged post becomes exactly one row (see
  // expect_exactly_once), and postd stops cleanly.
  void expect_load_stored_once(load& l, const std::string& db_url,
                               const persistence::redis_options& redis,
                               server_process& server,
                               std::chrono::milliseconds drain = 25s) const {
    l.join();
    mark("load done: " + l.summary());
    EXPECT_GE(static_cast<int>(l.acked_posts().size()), l.target());
    expect_exactly_once(db_url, redis, queue, l, server, drain);
    mark("drained");
    EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
  }

  void redis_fault_mid_load(const std::vector<std::string>& directives,
                            const std::function<void(private_redis&)>& fault);
  void redis_killed_mid_load(const std::vector<std::string>& directives);
};

} // namespace

// postd killed with -9 while its writers hold batches: the jobs it had
// taken keep their (short) locks until they expire, then the next
// instance's stalled check puts them back and it writes each once; those
// whose row was written before the kill are not written twice. PostgreSQL
// stops a moment before the kill, so the writers surely hold taken jobs
// (in `active`) when it comes.
TEST_F(FaultTest, KillNineMidLoadLosesAndDoublesNothing) {
  private_postgres pg;
  scratch_database unused; // the posts go to `pg`
  // The lock and the stalled check: 30 s in Bull.
  const auto e = env_for(unused, {{"DATABASE_URL", pg.pgbouncer_url()},
                                  {"POSTD_FAULT_LOCK_MS", "2000"},
                                  {"WRITER_BATCH", "64"}});
  migrate(e);
  auto first = std::make_unique<server_process>(e);
  ASSERT_TRUE(first->wait_healthy(20s)) << first->output();

  constexpr int n = 2000;
  load l{first->port(), n};
  ASSERT_TRUE(l.wait_acked(n / 3, 20s)) << l.summary();
  pg.stop();
  persistence::redis_client redis{test_redis()};
  ASSERT_TRUE(eventually([&] {
    return redis.command({"LLEN", "bull:" + queue + ":active"})->integer > 0;
  })) << "no writer holds a job";
  EXPECT_EQ(first->stop(SIGKILL), 128 + SIGKILL);
  auto stranded = queue_counts(test_redis(), queue).active;
  mark("killed -9 after " + std::to_string(l.acked()) + " acks; " +
       std::to_string(stranded) + " job(s) left active by it");
  EXPECT_GT(stranded, 0) << "the kill must strand taken jobs";
  pg.start();

  START_SERVER(second, e);
  l.set_port(second.port());
  mark("second postd healthy");
  expect_load_stored_once(l, pg.direct_url(), test_redis(), second);
}

// PostgreSQL (behind its PgBouncer) stopped for 10 s mid-load: creates keep
// being acknowledged (they only need Redis), writers hold their batches and
// retry, and once it is back every job becomes one row.
TEST_F(FaultTest, PostgresDownTenSecondsThenBack) {
  private_postgres pg;
  auto e = fault_env({{"DATABASE_URL", pg.pgbouncer_url()},
                      {"REDIS_HOST", test_redis().host},
                      {"REDIS_PORT", std::to_string(test_redis().port)},
                      {"JWT_SECRET", secret},
                      {"QUEUE_NAME", queue},
                      {"WRITERS", "2"},
                      {"HTTP_THREADS", "2"},
                      {"LOG_LEVEL", "warn"}});
  migrate(e);
  START_SERVER(server, e);

  constexpr int n = 2500;
  load l{server.port(), n};
  ASSERT_TRUE(l.wait_acked(500, 20s)) << l.summary();
  pg.stop();
  mark("PostgreSQL stopped after " + std::to_string(l.acked()) + " acks");
  int at_stop = l.acked();
  std::this_thread::sleep_for(10s);
  int during = l.acked() - at_stop;
  pg.start();
  mark("PostgreSQL started; " + std::to_string(during) +
       " acks while it was down");
  EXPECT_GT(during, 100) << "creates must not need PostgreSQL; " << l.summary();
  expect_load_stored_once(l, pg.direct_url(), test_redis(), server);
  expect_every_answer_was_202(l);
}

// A fault of Redis (`directives` added to deploy/redis.conf) mid-load:
// `fault` breaks it and brings it back; creates meanwhile are not
// acknowledged (503, or no answer in time) and are retried with their
// Idempotency-Key, and every post answered 202 before, during or after
// becomes exactly one row.
void FaultTest::redis_fault_mid_load(
    const std::vector<std::string>& directives,
    const std::function<void(private_redis&)>& fault) {
  private_redis redis{directives};
  scratch_database db;
  // A writer whose take ran (and was written) but whose reply was lost
  // holds nothing it knows of: those jobs wait in `active` for their lock
  // to expire and the stalled check, as after a kill -9 of postd.
  auto e = env_for(db, {{"POSTD_FAULT_LOCK_MS", "2000"}});
  redis.serve(e);
  migrate(e);
  START_SERVER(server, e);

  constexpr int n = 2000;
  load l{server.port(), n};
  ASSERT_TRUE(l.wait_acked(n / 3, 20s)) << l.summary();
  fault(redis);
  EXPECT_GT(l.statuses()[503] + l.unanswered(), 0)
      << "creates while Redis is out are not acknowledged; " << l.summary();
  // A create whose script ran but whose reply was lost is answered 503 (or
  // not at all) although the job exists (a whole enqueue batch shares one
  // script): its retry, with the same Idempotency-Key, gets that job's id,
  // so it is still one post.
  expect_load_stored_once(l, db.direct_url(), redis.options(), server, 40s);
}

// Redis killed with -9 and started again on the same files after 2 s.
// Redis writes the AOF before it replies, so a process crash loses no
// acknowledged job with appendfsync always or with the shipped everysec.
void FaultTest::redis_killed_mid_load(
    const std::vector<std::string>& directives) {
  redis_fault_mid_load(directives, [this](private_redis& redis) {
    redis.kill9();
    mark("Redis killed -9");
    std::this_thread::sleep_for(2s);
    redis.start();
    mark("Redis started again (AOF replayed)");
  });
}

TEST_F(FaultTest, RedisRestartWithAofAlwaysKeepsEveryAcknowledgedJob) {
  redis_killed_mid_load({"appendonly yes", "appendfsync always"});
}

// deploy/redis.conf as shipped: appendonly yes, appendfsync everysec.
TEST_F(FaultTest, RedisKilledWithTheShippedConfigKeepsEveryAcknowledgedJob) {
  redis_killed_mid_load({});
}

// Redis hung (SIGSTOP: connections open, nothing answers) for 10 s.
TEST_F(FaultTest, RedisHungTenSecondsMidLoad) {
  redis_fault_mid_load({}, [this](private_redis& redis) {
    redis.pause();
    mark("Redis hung (SIGSTOP)");
    std::this_thread::sleep_for(10s);
    redis.resume();
    mark("Redis runs again (SIGCONT)");
  });
}

// PostgreSQL hung (SIGSTOP) for 5 s, then killed with -9 (every process)
// and started again, then its PgBouncer restarted, all under load: creates
// need only Redis, so every one is answered 202, and every post becomes one
// row once the writers get through again.
TEST_F(FaultTest, PostgresHungKilledAndPgBouncerRestartedMidLoad) {
  private_postgres pg{/*crash_safe=*/true};
  scratch_database unused; // the posts go to `pg`
  // Bull's 30 s job lock: a writer stuck in a call to the hung server
  // cannot renew its locks meanwhile (no client-side bound on a libpq call
  // yet), and a job whose lock lapsed twice would be failed as stalled.
  auto e = env_for(unused, {{"DATABASE_URL", pg.pgbouncer_url()}});
  migrate(e);
  START_SERVER(server, e);

  // Runs until stopped after the last fault: a count sized to outlast the
  // faults once ended too early on a quick machine (2,503 acked by then).
  load l{server.port(), 1'000'000, /*threads=*/4, /*pace=*/5ms};
  ASSERT_TRUE(l.wait_acked(400, 20s)) << l.summary();
  pg.signal_all("STOP");
  mark("PostgreSQL hung (SIGSTOP) after " + std::to_string(l.acked()) +
       " acks");
  std::this_thread::sleep_for(5s);
  pg.signal_all("CONT");
  std::this_thread::sleep_for(2s);
  pg.signal_all("KILL");
  mark("PostgreSQL killed -9 after " + std::to_string(l.acked()) + " acks");
  std::this_thread::sleep_for(1s);
  pg.start();
  mark("PostgreSQL started again");
  std::this_thread::sleep_for(2s);
  pg.restart_bouncer();
  mark("PgBouncer restarted after " + std::to_string(l.acked()) + " acks");
  // Posts go on after the last fault too, then the load ends.
  ASSERT_TRUE(l.wait_acked(l.acked() + 200, 20s)) << l.summary();
  l.stop();
  l.join();
  mark("load done: " + l.summary());
  expect_exactly_once(pg.direct_url(), test_redis(), queue, l, server, 40s);
  mark("drained");
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
  expect_every_answer_was_202(l);
}

// Redis loses its state (an operator's FLUSHALL; a restart without
// persistence): Bull's job ids start over at 1, below ids that already have
// rows. Every post acknowledged afterwards is still stored, once: a post's
// identity is its own id, given when it was queued, not the job id. The
// job-status route answers for the new job.
// A SIGSTOPped PostgreSQL never sends statement_timeout's error, and libpq
// would wait in recv() for ever: the store cuts the call itself at
// statement_timeout + 1 s (a retryable error), and after SIGCONT the next
// call reconnects and works. Without the bound, the first ping below hangs
// until the test's own timeout.
TEST_F(FaultTest, CallsToAHungPostgresEndAtTheirClientSideBound) {
  private_postgres pg;
  persistence::post_store store{
      persistence::pg_options{.url = pg.direct_url(),
                              .connect_timeout = 2000ms,
                              .statement_timeout = 1000ms}};
  store.ping();
  pg.signal_all("STOP");
  auto started = std::chrono::steady_clock::now();
  try {
    store.ping();
    ADD_FAILURE() << "a hung PostgreSQL answered";
  } catch (const persistence::postgres_error& e) {
    EXPECT_TRUE(e.connection_lost()) << "retryable";
    EXPECT_NE(std::string(e.what()).find("did not answer within 2000 ms"),
              std::string::npos)
        << e.what();
  }
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 2000ms);
  EXPECT_LT(took, 4000ms);
  pg.signal_all("CONT");
  EXPECT_NO_THROW(store.ping());
}

TEST_F(FaultTest, PostsAfterRedisLostItsStateAreAllStored) {
  private_redis redis{{"appendonly no", "save \"\""}};
  scratch_database db;
  auto e = env_for(db);
  redis.serve(e);
  migrate(e);
  auto server = std::make_unique<server_process>(e);
  ASSERT_TRUE(server->wait_healthy(20s)) << server->output();

  const std::string token = http::token_verifier{secret}.issue("carol", 600s);
  std::map<std::string, std::string> acked; // content -> jobId
  // A 503 while postd reconnects is retried with the same Idempotency-Key.
  // The ids count on from `first_id`: never back, even where Bull's counter
  // started over, so a jobId names one post only.
  auto create_all = [&](const std::string& phase, int n, int first_id) {
    for (int i = 1; i <= n; ++i) {
      const std::string content = phase + " " + std::to_string(i);
      http_result r;
      eventually(
          [&] {
            r = http_call(server->port(), "POST", "/v1/post/create",
                          nlohmann::json{{"content", content}}.dump(),
                          {{"Authorization", "Bearer " + token},
                           {"Content-Type", "application/json"},
                           {"Idempotency-Key", content}});
            return r.status != 503;
          },
          10s);
      ASSERT_EQ(r.status, 202u) << r.body;
      auto id = nlohmann::json::parse(r.body)["jobId"].get<std::string>();
      EXPECT_EQ(id, std::to_string(first_id + i - 1))
          << "an id given again after the counter started over";
      acked.emplace(content, id);
    }
  };
  pqxx::connection conn{db.direct_url()};
  auto all_stored = [&] {
    auto stored = rows_by_content(conn);
    return stored.size() == acked.size() &&
           std::all_of(acked.begin(), acked.end(), [&](const auto& a) {
             auto it = stored.find(a.first);
             return it != stored.end() && it->second.first == 1 &&
                    it->second.second == a.second;
           });
  };
  auto expect_all_stored = [&](const std::string& after) {
    EXPECT_TRUE(eventually(all_stored, 15s))
        << after << ": " << rows_by_content(conn).size() << " rows for "
        << acked.size() << " acknowledged posts; " << server->output();
  };

  create_all("before", 5, 1);
  expect_all_stored("before any reset");

  persistence::redis_client{redis.options()}.command({"FLUSHALL"});
  mark("FLUSHALL");
  create_all("after the flush", 3, 6);
  expect_all_stored("after FLUSHALL");

  // The job-status route answers for each jobId with the post its 202 was
  // for: 2 is still "before 2", 7 the second post after the flush.
  auto content_of_job = [&](const std::string& job_id) {
    auto status = http_call(server->port(), "GET", "/v1/post/jobs/" + job_id,
                            {}, {{"Authorization", "Bearer " + token}});
    auto body = nlohmann::json::parse(status.body);
    EXPECT_EQ(status.status, 200u) << status.body;
    EXPECT_EQ(body["status"], "completed") << status.body;
    if (!body.contains("postId"))
      return std::string{"no postId: "} + status.body;
    auto post = http_call(server->port(), "GET",
                          "/v1/post/" + body["postId"].get<std::string>(), {},
                          {{"Authorization", "Bearer " + token}});
    return nlohmann::json::parse(post.body)["content"].get<std::string>();
  };
  EXPECT_EQ(content_of_job("2"), "before 2");
  EXPECT_EQ(content_of_job("7"), "after the flush 2");

  redis.stop();
  redis.start(); // no AOF, no RDB: empty again
  mark("Redis restarted without persistence");
  ASSERT_TRUE(eventually(
      [&] { return http_call(server->port(), "GET", "/health").status == 200; },
      15s))
      << server->output();
  // On its new connection the enqueue actor finds the jobs it acknowledged
  // in the last 30 s gone and adds them again (all 8 unless this test ran
  // slower than that): written again, each is still one row.
  ASSERT_TRUE(eventually(
      [&] {
        return metric_value(server->port(), "postd_jobs_recovered_total") > 0;
      },
      15s))
      << server->output();
  create_all("after the restart", 4, 9);
  expect_all_stored("after a restart without persistence");
  EXPECT_EQ(rows_by_content(conn).size(), 12u);
  // And the queue drains: the jobs added again were taken and completed.
  EXPECT_TRUE(eventually(
      [&] {
        persistence::redis_client client{redis.options()};
        auto c = persistence::count_jobs(
            client, persistence::queue_keys{"bull", queue});
        return c.waiting + c.active + c.delayed == 0;
      },
      15s));
  EXPECT_EQ(server->stop(SIGTERM), 0) << server->output();
}

// Writers crash (an exception their retry does not catch) on one batch in
// five, half of the time after the rows were committed and before the jobs
// were completed: the supervisor restarts them, the jobs come back, and
// each is still written exactly once.
TEST_F(FaultTest, WritersThrowingOnSomeJobsStillWriteEachOnce) {
  scratch_database db;
  const auto e = with_fault_api(
      env_for(db, {{"POSTD_FAULT_LOCK_MS", "2000"}, {"WRITER_BATCH", "64"}}));
  migrate(e);
  START_SERVER(server, e);
  put_faults(server.port(), R"({"writer_crash_rate":0.2})");

  constexpr int n = 2000;
  load l{server.port(), n};
  expect_load_stored_once(l, db.direct_url(), test_redis(), server, 30s);
  expect_every_answer_was_202(l);
  auto out = server.output();
  auto crashes =
      count_lines(out, {"actor crashed", R"("supervisor":"writers")"});
  mark(std::to_string(crashes) + " writer crash(es) logged");
  EXPECT_GT(crashes, 0u) << out;
  EXPECT_NE(out.find("injected writer fault after the database write"),
            std::string::npos)
      << out;
}

// The enqueue actor crashes around one batch in twenty (half before the add
// script, half after Redis took the jobs and before anyone was answered),
// and the readers on one query in twenty. The root supervisor restarts
// them; every request is answered (a create or read caught in a crash gets
// 503 at once, never a silent close or a hang until the deadline); a
// retried create with the same Idempotency-Key gets the same jobId, and
// every post is one row.
TEST_F(FaultTest,
       EnqueueAndReadersThrowingAreRestartedAndEveryRequestAnswered) {
  scratch_database db;
  const auto e = with_fault_api(env_for(db, {{"REQUEST_TIMEOUT_MS", "3000"}}));
  migrate(e);
  START_SERVER(server, e);
  put_faults(server.port(),
             R"({"enqueue_crash_rate":0.05,"reader_crash_rate":0.05})");

  std::atomic<bool> loading{true};
  std::map<unsigned, int> reads;
  std::string read_failure;
  std::thread reader([&] {
    const auto token = http::token_verifier{secret}.issue("user0", 600s);
    while (loading) {
      try {
        auto started = std::chrono::steady_clock::now();
        auto r = http_call(server.port(), "GET", "/v1/post?authorId=user0", {},
                           {{"Authorization", "Bearer " + token}}, 5s);
        ++reads[r.status];
        // Not the deadline: a read caught in a crash is answered at once.
        if (std::chrono::steady_clock::now() - started > 2500ms)
          read_failure = "a read took until its deadline: " + r.body;
      } catch (const std::exception& x) {
        read_failure = std::string("a read got no answer: ") + x.what();
      }
    }
  });
  load l{server.port(), 1500};
  l.join();
  loading = false;
  reader.join();
  mark("reads: 200 x " + std::to_string(reads[200]) + ", 503 x " +
       std::to_string(reads[503]));
  EXPECT_EQ(read_failure, "");
  EXPECT_EQ(reads.size(), reads.count(503) + reads.count(200));
  EXPECT_GT(reads[200], 0);
  EXPECT_EQ(l.unanswered(), 0) << l.summary(); // each send got an answer
  auto statuses = l.statuses();
  EXPECT_EQ(statuses.size(), statuses.count(202) + statuses.count(503))
      << l.summary();
  EXPECT_GT(statuses[503], 0) << l.summary(); // crashes did catch creates
  for (const std::string actor : {"enqueue", "reader-0"}) {
    auto series = R"(postd_actor_restarts_total{actor=")" + actor + "\"}";
    EXPECT_GT(metric_value(server.port(), series), 0) << series;
  }
  auto out = server.output();
  EXPECT_GT(count_lines(out, {"injected enqueue fault after the redis add"}),
            0u);
  EXPECT_GT(count_lines(out, {"actor crashed", R"("actor":"reader-)"}), 0u);
  expect_load_stored_once(l, db.direct_url(), test_redis(), server, 30s);
}

// The promise at volume, no fault: 20,000 posts sent by 8 keep-alive
// clients at once are all answered 202 and become exactly 20,000 rows
// (through PgBouncer), each post once with its jobId, nothing left queued.
TEST_F(FaultTest, TwentyThousandPostsUnderLoadBecomeTwentyThousandRows) {
  scratch_database db;
  auto e = env_for(db);
  migrate(e);
  START_SERVER(server, e);

  constexpr int clients = 8, per_client = 2500;
  std::mutex mu;
  std::map<std::string, std::string> acked; // content -> jobId
  std::map<unsigned, int> statuses;
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t)
    threads.emplace_back([&, t] {
      const std::string token = http::token_verifier{secret}.issue(
          "volume" + std::to_string(t), 600s);
      raw_client c{server.port(), 10s};
      for (int i = 0; i < per_client; ++i) {
        const std::string content =
            "volume " + std::to_string(t) + "/" + std::to_string(i);
        c.send(raw_request("POST", "/v1/post/create",
                           {{"Authorization", "Bearer " + token},
                            {"Content-Type", "application/json"}},
                           nlohmann::json{{"content", content}}.dump()));
        auto r = c.read_response();
        std::lock_guard lock{mu};
        ++statuses[r.status];
        if (r.status == 202)
          acked.emplace(
              content,
              nlohmann::json::parse(r.body)["jobId"].get<std::string>());
      }
    });
  for (auto& t : threads)
    t.join();
  mark("sent " + std::to_string(clients * per_client) + " creates");
  EXPECT_EQ(statuses[202], clients * per_client);
  std::set<std::string> job_ids;
  for (const auto& [content, job_id] : acked)
    job_ids.insert(job_id);
  ASSERT_EQ(job_ids.size(), acked.size()) << "a jobId was answered twice";

  pqxx::connection conn{db.direct_url()};
  auto rows = [&] {
    pqxx::work tx{conn};
    return tx.exec1("SELECT count(*) FROM \"Post\"")[0].as<long long>();
  };
  EXPECT_TRUE(eventually([&] { return rows() >= clients * per_client; }, 60s))
      << rows() << " rows; " << queue_counts(test_redis(), queue).str();
  mark("all persisted");
  EXPECT_EQ(rows(), clients * per_client);
  std::map<std::string, std::string> in_db; // content -> jobId, once each
  for (const auto& [content, row] : rows_by_content(conn))
    if (row.first == 1)
      in_db.emplace(content, row.second);
  EXPECT_EQ(in_db, acked) << "rows are not the acknowledged posts, once each";
  EXPECT_TRUE(eventually([&] {
    auto c = queue_counts(test_redis(), queue);
    return c.wait + c.active + c.delayed + c.paused + c.failed == 0;
  })) << queue_counts(test_redis(), queue).str();
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}

// A Redis that can lose jobs (evicts keys when full, no AOF) is named in a
// warning at start; the test Redis, set up as deploy/redis.conf says, is not.
TEST_F(FaultTest, WarnsAboutARedisThatCanLoseJobs) {
  private_redis risky{{"maxmemory-policy allkeys-lru", "appendonly no"}};
  scratch_database db;
  auto e = env_for(db);
  migrate(e);
  auto safe_env = e;
  risky.serve(e);
  START_SERVER(server, e);
  auto logged = [&](const char* what) {
    return eventually(
        [&] { return server.output().find(what) != std::string::npos; }, 5s);
  };
  EXPECT_TRUE(logged("maxmemory-policy is allkeys-lru")) << server.output();
  EXPECT_TRUE(logged("without AOF")) << server.output();
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();

  START_SERVER(safe, safe_env);
  EXPECT_EQ(safe.output().find("maxmemory-policy"), std::string::npos)
      << safe.output();
  EXPECT_EQ(safe.output().find("AOF"), std::string::npos) << safe.output();
  EXPECT_EQ(safe.stop(SIGTERM), 0) << safe.output();
}

// /health through outages, on one postd that is never restarted: ok; 503
// with the database under `error` while PostgreSQL is stopped; ok again once
// it is back; 503 with the queue under `error` while Redis is down; ok again.
TEST_F(FaultTest, HealthFollowsOutagesAndRecoversWithoutARestart) {
  private_postgres pg;
  private_redis redis{{"appendonly yes"}};
  env_map e{{"DATABASE_URL", pg.pgbouncer_url()},
            {"REDIS_HOST", redis.options().host},
            {"REDIS_PORT", std::to_string(redis.options().port)},
            {"JWT_SECRET", secret},
            {"QUEUE_NAME", queue},
            {"WRITERS", "2"},
            {"LOG_LEVEL", "warn"}};
  migrate(e);
  START_SERVER(server, e);
  const std::string queue_entry = "queue:" + queue;
  nlohmann::json last;
  // Waits until /health answers `status` with `down` (if any) under error.
  auto health_becomes = [&](unsigned status, const std::string& down) {
    return eventually(
        [&] {
          auto r = http_call(server.port(), "GET", "/health");
          last = nlohmann::json::parse(r.body, nullptr, false);
          if (r.status != status || !last.is_object())
            return false;
          if (down.empty())
            return last["error"].empty() && last["status"] == "ok";
          return last["status"] == "error" && last["error"].contains(down) &&
                 last["error"][down]["status"] == "down" &&
                 last["error"][down]["message"].is_string();
        },
        20s);
  };
  ASSERT_TRUE(health_becomes(200, "")) << last.dump();

  pg.stop();
  mark("PostgreSQL stopped");
  EXPECT_TRUE(health_becomes(503, "database")) << last.dump();
  EXPECT_EQ(last["info"][queue_entry]["status"], "up") << last.dump();
  pg.start();
  mark("PostgreSQL started");
  EXPECT_TRUE(health_becomes(200, "")) << last.dump();
  mark("healthy again");

  redis.kill9();
  mark("Redis killed");
  EXPECT_TRUE(health_becomes(503, queue_entry)) << last.dump();
  EXPECT_EQ(last["info"]["database"]["status"], "up") << last.dump();
  redis.start();
  mark("Redis started");
  EXPECT_TRUE(health_becomes(200, "")) << last.dump();
  mark("healthy again");
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}

// A hung Redis (SIGSTOP: connections stay open, nothing answers) turns
// creates and job lookups into 503 "request timed out" within
// REQUEST_TIMEOUT_MS; a create says it may have been queued, and its retry
// with the same Idempotency-Key after Redis is back yields one post.
TEST_F(FaultTest, RequestsAgainstAHungRedisTimeOutThenRecover) {
  private_postgres pg;
  private_redis redis{{"appendonly yes"}};
  scratch_database unused; // the posts go to `pg`
  auto e = env_for(unused, {{"DATABASE_URL", pg.pgbouncer_url()},
                            {"REQUEST_TIMEOUT_MS", "1000"},
                            {"REDIS_TIMEOUT_MS", "4000"}});
  redis.serve(e);
  migrate(e);
  START_SERVER(server, e);
  auto token = http::token_verifier{secret}.issue("hung-author", 1h);
  auto create = [&](const std::string& content, const std::string& key) {
    return http_call(server.port(), "POST", "/v1/post/create",
                     nlohmann::json{{"content", content}}.dump(),
                     {{"Authorization", "Bearer " + token},
                      {"Content-Type", "application/json"},
                      {"Idempotency-Key", key}});
  };
  auto before = create("before the hang", "k-before");
  ASSERT_EQ(before.status, 202u) << before.body;

  redis.pause();
  mark("Redis stopped (SIGSTOP)");
  auto sent = std::chrono::steady_clock::now();
  auto hung = create("during the hang", "k-hung");
  auto waited = std::chrono::steady_clock::now() - sent;
  EXPECT_EQ(hung.status, 503u) << hung.body;
  auto body = nlohmann::json::parse(hung.body, nullptr, false);
  EXPECT_EQ(body["message"], "request timed out") << hung.body;
  EXPECT_EQ(body["error"], "Service Unavailable") << hung.body;
  EXPECT_EQ(body["mayHaveBeenQueued"], true) << hung.body;
  EXPECT_EQ(hung.headers["retry-after"], "1");
  // The request's deadline answered, not Redis's own timeout (4 s).
  EXPECT_LT(waited, 3500ms);
  auto lookup = http_call(server.port(), "GET", "/v1/post/jobs/1", "",
                          {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(lookup.status, 503u) << lookup.body;
  EXPECT_EQ(nlohmann::json::parse(lookup.body, nullptr, false)["message"],
            "request timed out")
      << lookup.body;

  auto metrics = http_call(server.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("\npostd_requests_timed_out_total 2\n"),
            std::string::npos)
      << metrics;
  redis.resume();
  mark("Redis resumed (SIGCONT)");
  // The retry: a 202 once Redis answers again, with one post either way.
  ASSERT_TRUE(eventually(
      [&] { return create("during the hang", "k-hung").status == 202u; }, 20s))
      << server.output();
  EXPECT_EQ(create("after the hang", "k-after").status, 202u);
  pqxx::connection conn{pg.direct_url()};
  auto rows_of = [&](const std::string& content) {
    pqxx::nontransaction tx{conn};
    return tx
        .exec_params1("SELECT count(*) FROM \"Post\" WHERE content = $1",
                      content)[0]
        .as<int>();
  };
  ASSERT_TRUE(eventually(
      [&] {
        return rows_of("before the hang") == 1 &&
               rows_of("during the hang") == 1 &&
               rows_of("after the hang") == 1;
      },
      20s))
      << server.output();
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}
