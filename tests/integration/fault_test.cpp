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
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http/auth.hpp"
#include "persistence/redis_client.hpp"
#include "support/eventually.hpp"
#include "support/raw_client.hpp"
#include "support/server_process.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* secret = "fault-secret";

// Runs a service function; throws (failing the test) when it fails.
void must(const std::string& script) {
  if (shell(script) != 0)
    throw std::runtime_error("failed: " + script);
}

std::string service_dir(const std::string& stem) {
  return require_env("POSTD_TEST_SERVICES_DIR") + "/" + unique_name(stem);
}

// A Redis of the test's own (Bull's AOF settings plus `directives`), so it
// can be killed without disturbing the tests beside it.
class private_redis {
public:
  explicit private_redis(std::vector<std::string> directives)
      : dir_(service_dir("redis")), port_(free_port()),
        directives_(std::move(directives)) {
    start();
  }
  ~private_redis() {
    stop();
    shell("rm -rf " + dir_);
  }
  private_redis(const private_redis&) = delete;
  private_redis& operator=(const private_redis&) = delete;

  void start() {
    std::string cmd = "postd_start_redis " + dir_ + " " + std::to_string(port_);
    for (const auto& d : directives_)
      cmd += " \"" + d + "\"";
    must(cmd);
  }
  void stop() { shell("postd_stop_redis " + dir_); }
  // SIGKILL: no shutdown, no final AOF flush; only what was fsynced stays.
  void kill9() {
    must("kill -KILL \"$(cat " + dir_ +
         "/redis.pid)\" && _postd_wait_gone \"$(cat " + dir_ +
         "/redis.pid)\" redis-server 10");
  }
  // Points a postd's environment at this Redis.
  void serve(env_map& e) const {
    e["REDIS_HOST"] = options().host;
    e["REDIS_PORT"] = std::to_string(port_);
  }
  persistence::redis_options options() const {
    persistence::redis_options o;
    o.host = "127.0.0.1";
    o.port = port_;
    return o;
  }

private:
  std::string dir_;
  int port_;
  std::vector<std::string> directives_;
};

// A PostgreSQL of the test's own (initdb'd on start, fsync off) with a
// PgBouncer in front, like production, and one database migrated by postd.
class private_postgres {
public:
  private_postgres()
      : dir_(service_dir("pg")), bouncer_dir_(service_dir("pgb")),
        port_(free_port()), bouncer_port_(free_port()) {
    start();
    must("postd_start_pgbouncer " + bouncer_dir_ + " " +
         std::to_string(bouncer_port_) + " " + std::to_string(port_));
    pqxx::connection conn{url_to(port_, "postgres")};
    pqxx::nontransaction tx{conn};
    tx.exec("CREATE DATABASE " + tx.quote_name(db_));
  }
  ~private_postgres() {
    shell("postd_stop_pgbouncer " + bouncer_dir_);
    stop();
    shell("rm -rf " + dir_ + " " + bouncer_dir_);
  }
  private_postgres(const private_postgres&) = delete;
  private_postgres& operator=(const private_postgres&) = delete;

  void start() {
    must("postd_start_postgres " + dir_ + " " + std::to_string(port_) +
         " fsync=off synchronous_commit=off full_page_writes=off");
  }
  void stop() { shell("postd_stop_postgres " + dir_); }
  std::string direct_url() const { return url_to(port_, db_); }
  std::string pgbouncer_url() const { return url_to(bouncer_port_, db_); }

private:
  static std::string url_to(int port, const std::string& db) {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/" + db;
  }
  std::string dir_, bouncer_dir_;
  int port_, bouncer_port_;
  std::string db_ = unique_name("postd_fault");
};

// Client threads posting creates to `port` until `target` were answered
// 202 (or the deadline passes), each with a content of its own, recording
// every acknowledged content and its jobId.
class load {
public:
  load(int port, int target, int threads = 4) : port_(port), target_(target) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, t] { run(t); });
  }
  ~load() { join(); }
  load(const load&) = delete;
  load& operator=(const load&) = delete;

  void set_port(int port) { port_ = port; }
  int acked() const { return acked_count_; }
  // Blocks until `n` creates were acknowledged (or the timeout passes).
  bool wait_acked(int n, std::chrono::milliseconds timeout) {
    return eventually([&] { return acked_count_ >= n; }, timeout);
  }
  void join() {
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }
  // content -> jobId of every create answered 202.
  std::map<std::string, std::string> acked_posts() const {
    std::lock_guard lock{mu_};
    return acked_;
  }
  int unknown() const { return unknown_; } // no answer: may be queued
  std::map<unsigned, int> statuses() const {
    std::lock_guard lock{mu_};
    return statuses_;
  }
  std::string summary() const {
    std::lock_guard lock{mu_};
    std::string s = "acked " + std::to_string(acked_.size()) + ", no answer " +
                    std::to_string(unknown_.load());
    for (const auto& [status, n] : statuses_)
      s += ", " + std::to_string(status) + ": " + std::to_string(n);
    return s;
  }

private:
  void run(int t) {
    const std::string token =
        http::token_verifier{secret}.issue("user" + std::to_string(t), 600s);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (int i = 0;
         acked_count_ < target_ && std::chrono::steady_clock::now() < deadline;
         ++i) {
      const std::string content =
          "post " + std::to_string(t) + "/" + std::to_string(i);
      try {
        auto r = http_call(port_, "POST", "/v1/post/create",
                           nlohmann::json{{"content", content}}.dump(),
                           {{"Authorization", "Bearer " + token},
                            {"Content-Type", "application/json"}},
                           5s);
        std::lock_guard lock{mu_};
        ++statuses_[r.status];
        if (r.status == 202) {
          auto id = nlohmann::json::parse(r.body)["jobId"].get<std::string>();
          if (!job_ids_.insert(id).second)
            duplicate_ack_ = id;
          acked_.emplace(content, id);
          ++acked_count_;
          continue;
        }
      } catch (const boost::system::system_error&) {
        // Refused or reset: postd is down. Possibly queued if it was reset
        // after the request went out.
        ++unknown_;
      } catch (const std::runtime_error&) {
        ++unknown_; // no whole answer in time
      }
      std::this_thread::sleep_for(20ms); // not acknowledged: do not spin
    }
  }

  std::atomic<int> port_;
  const int target_;
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> acked_;
  std::set<std::string> job_ids_;
  std::map<unsigned, int> statuses_;
  std::atomic<int> acked_count_{0};
  std::atomic<int> unknown_{0};

public:
  // A jobId answered 202 twice: impossible while Redis keeps its state.
  std::string duplicate_ack_;
};

struct bull_counts {
  long long wait = 0, active = 0, delayed = 0, failed = 0, completed = 0,
            paused = 0;
  std::string str() const {
    return "wait " + std::to_string(wait) + ", active " +
           std::to_string(active) + ", delayed " + std::to_string(delayed) +
           ", paused " + std::to_string(paused) + ", failed " +
           std::to_string(failed) + ", completed " + std::to_string(completed);
  }
};

// One snapshot (MULTI/EXEC): counted one by one, a job moving from active
// back to wait between two reads would be missed by both.
bull_counts queue_counts(const persistence::redis_options& redis,
                         const std::string& queue) {
  persistence::redis_client r{redis};
  const std::string k = "bull:" + queue + ":";
  auto replies = r.pipeline({{"MULTI"},
                             {"LLEN", k + "wait"},
                             {"LLEN", k + "active"},
                             {"LLEN", k + "paused"},
                             {"ZCARD", k + "delayed"},
                             {"ZCARD", k + "failed"},
                             {"ZCARD", k + "completed"},
                             {"EXEC"}});
  const redisReply* exec = replies.back().get();
  if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 6)
    throw std::runtime_error("queue counts: MULTI/EXEC failed");
  auto n = [&](std::size_t i) { return exec->element[i]->integer; };
  bull_counts c;
  c.wait = n(0);
  c.active = n(1);
  c.paused = n(2);
  c.delayed = n(3);
  c.failed = n(4);
  c.completed = n(5);
  return c;
}

env_map fault_env(env_map e) {
  e["THROTTLE_LIMIT"] = "1000000"; // a load from one IP, not a rate test
  e["KEEP_COMPLETED"] = "100000";  // completed stays countable
  return e;
}

// content -> (rows with that content, one of their jobIds).
std::map<std::string, std::pair<long long, std::string>>
rows_by_content(pqxx::connection& conn) {
  pqxx::work tx{conn};
  std::map<std::string, std::pair<long long, std::string>> out;
  for (const auto& r : tx.exec(R"(SELECT content, count(*), min("jobId")
                                   FROM "Post" GROUP BY content)"))
    out[r[0].as<std::string>()] = {r[1].as<long long>(),
                                   r[2].as<std::string>()};
  return out;
}

// The guarantee, per post (each create has a content of its own): once the
// queue is drained, every acknowledged post is exactly one row carrying its
// jobId, nothing is active or failed. `maybe_queued`: creates answered
// otherwise that may have been queued all the same; with the requests that
// got no answer, at most that many rows may exist for posts nobody was
// answered 202 for, and none twice.
void expect_exactly_once(const std::string& db_url,
                         const persistence::redis_options& redis,
                         const std::string& queue, const load& l,
                         const server_process& server,
                         std::chrono::milliseconds drain = 25s,
                         int maybe_queued = 0) {
  const auto acked = l.acked_posts();
  EXPECT_EQ(l.duplicate_ack_, "") << "one jobId answered 202 twice";
  pqxx::connection conn{db_url};
  auto rows = [&] {
    pqxx::work tx{conn};
    return tx.exec1("SELECT count(*) FROM \"Post\"")[0].as<long long>();
  };
  bool drained = eventually(
      [&] {
        auto c = queue_counts(redis, queue);
        return c.wait + c.active + c.delayed + c.paused == 0 &&
               rows() >= static_cast<long long>(acked.size());
      },
      drain);
  auto c = queue_counts(redis, queue);
  EXPECT_TRUE(drained) << c.str() << "; rows " << rows() << ", " << l.summary()
                       << "\n"
                       << server.output();
  const auto stored = rows_by_content(conn);
  std::vector<std::string> lost, doubled, wrong_job, extra;
  for (const auto& [content, job_id] : acked) {
    auto it = stored.find(content);
    if (it == stored.end())
      lost.push_back(content);
    else if (it->second.second != job_id)
      wrong_job.push_back(content);
  }
  for (const auto& [content, row] : stored) {
    if (row.first > 1)
      doubled.push_back(content);
    if (!acked.contains(content))
      extra.push_back(content);
  }
  EXPECT_TRUE(lost.empty())
      << lost.size() << " acknowledged post(s) without "
      << "a row, e.g. " << lost.front() << "; " << c.str();
  EXPECT_TRUE(doubled.empty()) << doubled.size() << " post(s) stored more "
                               << "than once, e.g. " << doubled.front();
  EXPECT_TRUE(wrong_job.empty())
      << wrong_job.size() << " row(s) carry another jobId than the 202 "
      << "gave, e.g. " << wrong_job.front();
  const auto may_exist = static_cast<std::size_t>(l.unknown() + maybe_queued);
  EXPECT_LE(extra.size(), may_exist)
      << "rows for posts nobody was answered 202 for, beyond the " << may_exist
      << " requests that may have been queued";
  EXPECT_EQ(c.active, 0) << c.str();
  EXPECT_EQ(c.failed, 0) << c.str();
  std::cout << "[ fault    ] " << l.summary() << "; rows " << stored.size()
            << " (" << extra.size() << " unacknowledged); " << c.str()
            << std::endl;
}

struct FaultTest : ::testing::Test {
  std::string queue = unique_name("fq");
  std::chrono::steady_clock::time_point started =
      std::chrono::steady_clock::now();

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
};

} // namespace

// postd killed with -9 while its writers hold batches: the jobs it had
// taken keep their (short) locks until they expire, then the next
// instance's stalled check puts them back and it writes each once; those
// whose row was written before the kill are not written twice.
TEST_F(FaultTest, KillNineMidLoadLosesAndDoublesNothing) {
  scratch_database db;
  auto e = fault_env(postd_env(db, queue, secret));
  e["POSTD_FAULT_LOCK_MS"] = "2000"; // lock and stalled check: 30 s in Bull
  e["WRITER_BATCH"] = "64";
  migrate(e);
  auto first = std::make_unique<server_process>(e);
  ASSERT_TRUE(first->wait_healthy(20s)) << first->output();

  constexpr int n = 2000;
  load l{first->port(), n};
  ASSERT_TRUE(l.wait_acked(n / 3, 20s)) << l.summary();
  // Kill while some batch is taken (active), if one shows up within 2 s.
  persistence::redis_client redis{test_redis()};
  eventually(
      [&] {
        return redis.command({"LLEN", "bull:" + queue + ":active"})->integer >
               0;
      },
      2s);
  EXPECT_EQ(first->stop(SIGKILL), 128 + SIGKILL);
  auto stranded = queue_counts(test_redis(), queue).active;
  mark("killed -9 after " + std::to_string(l.acked()) + " acks; " +
       std::to_string(stranded) + " job(s) left active by it");

  server_process second{e};
  ASSERT_TRUE(second.wait_healthy(20s)) << second.output();
  l.set_port(second.port());
  mark("second postd healthy");
  l.join();
  mark("load done: " + l.summary());
  EXPECT_GE(static_cast<int>(l.acked_posts().size()), n); // in-flight too
  expect_exactly_once(db.direct_url(), test_redis(), queue, l, second);
  mark("drained");
  EXPECT_EQ(second.stop(SIGTERM), 0) << second.output();
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
  server_process server{e};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();

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
  l.join();
  mark("load done: " + l.summary());
  EXPECT_GE(static_cast<int>(l.acked_posts().size()), n); // in-flight too
  expect_exactly_once(pg.direct_url(), test_redis(), queue, l, server);
  mark("drained");
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}

// Redis (AOF, fsync on every write) killed with -9 mid-load and started
// again on the same files: creates during the outage get 503 (not
// acknowledged), and every job answered 202 before or after survives the
// restart and becomes exactly one row.
TEST_F(FaultTest, RedisRestartWithAofAlwaysKeepsEveryAcknowledgedJob) {
  private_redis redis{{"appendonly yes", "appendfsync always"}};
  scratch_database db;
  auto e = fault_env(postd_env(db, queue, secret));
  redis.serve(e);
  // A writer whose take ran (and was fsynced) but whose reply was lost in
  // the kill holds nothing it knows of: those jobs wait in `active` for
  // their lock to expire and the stalled check, as after a kill -9 of postd.
  e["POSTD_FAULT_LOCK_MS"] = "2000";
  migrate(e);
  server_process server{e};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();

  constexpr int n = 2000;
  load l{server.port(), n};
  ASSERT_TRUE(l.wait_acked(n / 3, 20s)) << l.summary();
  redis.kill9();
  mark("Redis killed -9 after " + std::to_string(l.acked()) + " acks");
  std::this_thread::sleep_for(2s);
  int during = l.acked();
  auto refused = l.statuses()[503];
  redis.start();
  mark("Redis started again (AOF replayed)");
  EXPECT_GT(refused, 0) << "creates while Redis is down answer 503; "
                        << l.summary();
  l.join();
  mark("load done: " + l.summary() + "; acks before the restart " +
       std::to_string(during));
  EXPECT_GE(static_cast<int>(l.acked_posts().size()), n); // in-flight too
  // A create whose script ran (and was fsynced) but whose reply was lost in
  // the kill is answered 503 although the job exists (a whole enqueue batch
  // shares one script): those may become rows, acknowledged ones must.
  expect_exactly_once(db.direct_url(), redis.options(), queue, l, server, 25s,
                      l.statuses()[503]);
  mark("drained");
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}

// Redis loses its state (an operator's FLUSHALL; a restart without
// persistence): Bull's job ids start over at 1, below ids that already have
// rows. Every post acknowledged afterwards is still stored, once: a post's
// identity is its own id, given when it was queued, not the job id. The
// job-status route answers for the new job.
TEST_F(FaultTest, PostsAfterRedisLostItsStateAreAllStored) {
  private_redis redis{{"appendonly no", "save \"\""}};
  scratch_database db;
  auto e = fault_env(postd_env(db, queue, secret));
  redis.serve(e);
  migrate(e);
  auto server = std::make_unique<server_process>(e);
  ASSERT_TRUE(server->wait_healthy(20s)) << server->output();

  const std::string token = http::token_verifier{secret}.issue("carol", 600s);
  std::map<std::string, std::string> acked; // content -> jobId
  // A 503 while postd reconnects is retried with the same Idempotency-Key.
  auto create_all = [&](const std::string& phase, int n) {
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
      EXPECT_EQ(id, std::to_string(i)) << "the counter started over";
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

  create_all("before", 5);
  expect_all_stored("before any reset");

  persistence::redis_client{redis.options()}.command({"FLUSHALL"});
  mark("FLUSHALL");
  create_all("after the flush", 3);
  expect_all_stored("after FLUSHALL");

  // The job-status route answers for the new job 2, not the old post.
  auto status = http_call(server->port(), "GET", "/v1/post/jobs/2", {},
                          {{"Authorization", "Bearer " + token}});
  ASSERT_EQ(status.status, 200u) << status.body;
  auto body = nlohmann::json::parse(status.body);
  EXPECT_EQ(body["status"], "completed");
  ASSERT_TRUE(body.contains("postId")) << status.body;
  auto post = http_call(server->port(), "GET",
                        "/v1/post/" + body["postId"].get<std::string>(), {},
                        {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(nlohmann::json::parse(post.body)["content"], "after the flush 2")
      << post.body;

  redis.stop();
  redis.start(); // no AOF, no RDB: empty again
  mark("Redis restarted without persistence");
  ASSERT_TRUE(eventually(
      [&] { return http_call(server->port(), "GET", "/health").status == 200; },
      15s))
      << server->output();
  create_all("after the restart", 4);
  expect_all_stored("after a restart without persistence");
  EXPECT_EQ(rows_by_content(conn).size(), 12u);
  EXPECT_EQ(server->stop(SIGTERM), 0) << server->output();
}

// Writers crash (an exception their retry does not catch) on one batch in
// five, half of the time after the rows were committed and before the jobs
// were completed: the supervisor restarts them, the jobs come back, and
// each is still written exactly once.
TEST_F(FaultTest, WritersThrowingOnSomeJobsStillWriteEachOnce) {
  scratch_database db;
  auto e = fault_env(postd_env(db, queue, secret));
  e["POSTD_FAULT_WRITER_CRASH_RATE"] = "0.2";
  e["POSTD_FAULT_LOCK_MS"] = "2000";
  e["WRITER_BATCH"] = "64";
  migrate(e);
  server_process server{e};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();

  constexpr int n = 2000;
  load l{server.port(), n};
  l.join();
  mark("load done: " + l.summary());
  EXPECT_GE(static_cast<int>(l.acked_posts().size()), n); // in-flight too
  expect_exactly_once(db.direct_url(), test_redis(), queue, l, server, 30s);
  mark("drained");
  auto out = server.output();
  std::size_t crashes = 0;
  for (auto p = out.find("writer crashed"); p != std::string::npos;
       p = out.find("writer crashed", p + 1))
    ++crashes;
  mark(std::to_string(crashes) + " writer crash(es) logged");
  EXPECT_GT(crashes, 0u) << out;
  EXPECT_NE(out.find("injected writer fault after the database write"),
            std::string::npos)
      << out;
  EXPECT_EQ(server.stop(SIGTERM), 0) << out;
}

// The promise at volume, no fault: 20,000 posts sent by 8 keep-alive
// clients at once are all answered 202 and become exactly 20,000 rows
// (through PgBouncer), each post once with its jobId, nothing left queued.
TEST_F(FaultTest, TwentyThousandPostsUnderLoadBecomeTwentyThousandRows) {
  scratch_database db;
  auto e = fault_env(postd_env(db, queue, secret));
  migrate(e);
  server_process server{e};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();

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
  auto e = fault_env(postd_env(db, queue, secret));
  migrate(e);
  auto safe_env = e;
  risky.serve(e);
  server_process server{e};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();
  auto logged = [&](const char* what) {
    return eventually(
        [&] { return server.output().find(what) != std::string::npos; }, 5s);
  };
  EXPECT_TRUE(logged("maxmemory-policy is allkeys-lru")) << server.output();
  EXPECT_TRUE(logged("without AOF")) << server.output();
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();

  server_process safe{safe_env};
  ASSERT_TRUE(safe.wait_healthy(20s)) << safe.output();
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
  server_process server{e};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();
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
