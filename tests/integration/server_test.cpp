// The walking skeleton end to end: the postd binary, real Redis, and
// PostgreSQL through PgBouncer in transaction mode.

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http/auth.hpp"
#include "persistence/migrations.hpp"
#include "persistence/redis_client.hpp"
#include "support/eventually.hpp"
#include "support/raw_client.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* secret = "integration-secret";

struct ServerTest : ::testing::Test {
  scratch_database db;
  std::string queue = unique_name("q");

  // The test's own `settings`, and postd_env's for what they leave out.
  env_map env(env_map settings = {}) const {
    settings.merge(postd_env(db, queue, secret));
    return settings;
  }

  void migrate() {
    auto r = run_postd({"migrate"}, env());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string token(const std::string& sub) const {
    return http::token_verifier{secret}.issue(sub, 60s);
  }

  http_result create(int port, const std::string& content,
                     const std::string& sub = "alice") {
    return http_call(port, "POST", "/v1/post/create",
                     nlohmann::json{{"content", content}}.dump(),
                     {{"Authorization", "Bearer " + token(sub)},
                      {"Content-Type", "application/json"}});
  }

  // Rows in "Post", and how many distinct jobIds they carry.
  int rows() { return count("SELECT count(*) FROM \"Post\""); }
  int distinct_job_ids() {
    return count("SELECT count(DISTINCT \"jobId\") FROM \"Post\"");
  }
  // Waits (10 s at most) until "Post" holds `n` rows.
  bool rows_become(int n) {
    return eventually([&] { return rows() == n; });
  }
  // ... and then that each has a jobId of its own: no job written twice.
  void expect_rows_of_distinct_jobs(int n, const server_process& writer) {
    ASSERT_TRUE(rows_become(n)) << writer.output();
    EXPECT_EQ(distinct_job_ids(), n);
  }

private:
  int count(const char* query) {
    if (!pg_)
      pg_.emplace(db.direct_url());
    pqxx::nontransaction tx{*pg_};
    return tx.exec1(query)[0].as<int>();
  }
  std::optional<pqxx::connection> pg_; // opened on first use
};

} // namespace

TEST_F(ServerTest, MigrateIsIdempotentThroughPgBouncer) {
  const auto n = std::to_string(persistence::embedded_migrations().size());
  auto first = run_postd({"migrate"}, env());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find(n + " migration(s) applied"), std::string::npos)
      << first.out;
  auto second = run_postd({"migrate"}, env());
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(
      second.out.find("0 migration(s) applied, " + n + " already applied"),
      std::string::npos)
      << second.out;
  pqxx::connection conn{db.direct_url()};
  pqxx::work tx{conn};
  EXPECT_EQ(
      tx.exec1("SELECT count(*) FROM _prisma_migrations")[0].as<std::string>(),
      n);
}

TEST_F(ServerTest, CreateBecomesOneRowAndShowsInQueueHealth) {
  migrate();
  START_SERVER(server, env());

  auto r = create(server.port(), "hello \"postd\" \xF0\x9F\x9A\x80");
  ASSERT_EQ(r.status, 202u) << r.body;
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["message"], "Post creation queued successfully");
  EXPECT_EQ(body["status"], "processing");
  std::string job_id = body["jobId"];
  EXPECT_EQ(r.headers["location"], "/v1/post/jobs/" + job_id);
  EXPECT_EQ(r.headers["x-ratelimit-limit"], "100");
  EXPECT_EQ(r.headers["content-type"], "application/json; charset=utf-8");

  // The job sits in Redis under Bull's keys, in the old service's shape.
  persistence::redis_client redis{test_redis()};
  auto name = redis.command({"HGET", "bull:" + queue + ":" + job_id, "name"});
  auto data = redis.command({"HGET", "bull:" + queue + ":" + job_id, "data"});
  if (persistence::reply_string(name.get()).empty()) {
    // removed already? Only when removeOnComplete, which postd never sets.
    FAIL() << "job hash missing";
  }
  EXPECT_EQ(persistence::reply_string(name.get()), "create-post");
  auto job_data = nlohmann::json::parse(persistence::reply_string(data.get()));
  EXPECT_EQ(job_data["postData"]["content"],
            "hello \"postd\" \xF0\x9F\x9A\x80");
  EXPECT_EQ(job_data["userId"], "alice");

  pqxx::connection conn{db.direct_url()};
  ASSERT_TRUE(eventually([&] {
    pqxx::work tx{conn};
    return tx.exec_params1("SELECT count(*) FROM \"Post\" WHERE \"jobId\" = $1",
                           job_id)[0]
               .as<int>() == 1;
  })) << server.output();
  {
    pqxx::work tx{conn};
    auto row = tx.exec_params1(
        "SELECT content, \"authorId\" FROM \"Post\" WHERE \"jobId\" = $1",
        job_id);
    EXPECT_EQ(row[0].as<std::string>(), "hello \"postd\" \xF0\x9F\x9A\x80");
    EXPECT_EQ(row[1].as<std::string>(), "alice");
  }
  ASSERT_TRUE(eventually([&] {
    auto q = http_call(server.port(), "GET", "/health/queue");
    return q.status == 200 &&
           nlohmann::json::parse(q.body)["completed"].get<int>() >= 1;
  })) << server.output();
  auto q = nlohmann::json::parse(
      http_call(server.port(), "GET", "/health/queue").body);
  EXPECT_EQ(q["queue"], queue);
  EXPECT_EQ(q["waiting"], 0);
  EXPECT_EQ(q["failed"], 0);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}

TEST_F(ServerTest, ManyCreatesBecomeExactlyAsManyRows) {
  migrate();
  START_SERVER(server, env());
  constexpr int n = 60;
  std::set<std::string> ids;
  for (int i = 0; i < n; ++i) {
    auto r = create(server.port(), "post " + std::to_string(i),
                    "user" + std::to_string(i % 3));
    ASSERT_EQ(r.status, 202u) << r.body;
    ids.insert(nlohmann::json::parse(r.body)["jobId"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(n));
  expect_rows_of_distinct_jobs(n, server);
}

TEST_F(ServerTest, HealthHasTerminusShape) {
  migrate();
  START_SERVER(server, env());
  auto r = http_call(server.port(), "GET", "/health");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.headers["cache-control"], "no-cache, no-store, must-revalidate");
  auto h = nlohmann::json::parse(r.body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["info"]["database"]["status"], "up");
  auto q = "queue:post-creation";
  (void)q;
  EXPECT_EQ(h["info"]["queue:" + queue]["status"], "up");
  EXPECT_TRUE(h["info"]["queue:" + queue].contains("active"));
  EXPECT_TRUE(h["info"]["queue:" + queue].contains("waiting"));
  EXPECT_EQ(h["error"], nlohmann::json::object());
  EXPECT_EQ(h["details"], h["info"]);

  // Kubernetes probes: alive, and ready with every dependency up.
  auto live = http_call(server.port(), "GET", "/health/live");
  EXPECT_EQ(live.status, 200u) << live.body;
  EXPECT_EQ(live.body, R"({"status":"ok"})");
  auto ready = http_call(server.port(), "GET", "/health/ready");
  EXPECT_EQ(ready.status, 200u) << ready.body;
  EXPECT_EQ(nlohmann::json::parse(ready.body)["status"], "ok");
}

TEST_F(ServerTest, ConfigErrorsExitTwoWithOneClearLine) {
  auto expect_config_error = [](const env_map& e,
                                const std::vector<std::string>& args,
                                const std::string& variable) {
    auto r = run_postd(args, e);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find(variable), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  auto base = env();
  auto with = [&](const std::string& k, const std::string& v) {
    auto e = base;
    e[k] = v;
    return e;
  };
  expect_config_error(with("PORT", "abc"), {"serve"}, "PORT");
  expect_config_error(with("WRITERS", "-1"), {"serve"}, "WRITERS");
  expect_config_error(with("THROTTLE_STORE", "disk"), {}, "THROTTLE_STORE");
  expect_config_error(with("JWT_SECRET", ""), {"serve"}, "JWT_SECRET");
  expect_config_error(with("DATABASE_URL", ""), {"migrate"}, "DATABASE_URL");
  expect_config_error(base, {"serve", "--port", "99999"}, "PORT");
}

TEST_F(ServerTest, FlagsOverrideEnvironment) {
  // A bad PORT in the environment is overridden by a good flag.
  auto e = env({{"PORT", "abc"}, {"JWT_SECRET", "flag-test"}});
  auto r = run_postd({"token", "--sub", "bob", "--ttl", "60"}, e);
  EXPECT_EQ(r.exit_code, 2); // PORT is still parsed for every command
  r = run_postd({"--port", "3001", "token", "--sub", "bob", "--ttl", "60"}, e);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto tok = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(http::token_verifier{"flag-test"}.author("Bearer " + tok), "bob");
}

TEST_F(ServerTest, HelpExitsZero) {
  for (auto args : std::vector<std::vector<std::string>>{{"--help"},
                                                         {"serve", "--help"},
                                                         {"migrate", "--help"},
                                                         {"token", "--help"}}) {
    auto r = run_postd(args, env());
    EXPECT_EQ(r.exit_code, 0) << args[0];
    EXPECT_FALSE(r.out.empty());
  }
}

TEST_F(ServerTest, JobStatusFollowsTheJobToItsRow) {
  migrate();
  // Completed hashes are trimmed at once.
  START_SERVER(server, env({{"KEEP_COMPLETED", "0"}}));
  auto r = create(server.port(), "status please");
  ASSERT_EQ(r.status, 202u) << r.body;
  std::string job_id = nlohmann::json::parse(r.body)["jobId"];
  auto get = [&](const std::string& sub, const std::string& id) {
    return http_call(server.port(), "GET", "/v1/post/jobs/" + id, {},
                     {{"Authorization", "Bearer " + token(sub)}});
  };
  nlohmann::json status;
  ASSERT_TRUE(eventually([&] {
    auto s = get("alice", job_id);
    if (s.status != 200)
      return false;
    status = nlohmann::json::parse(s.body);
    return status["status"] == "completed";
  })) << server.output();
  // The hash is gone (KEEP_COMPLETED=0): the answer came from the row.
  persistence::redis_client redis{test_redis()};
  auto exists = redis.command({"EXISTS", "bull:" + queue + ":" + job_id});
  EXPECT_EQ(persistence::reply_integer(exists.get()), 0);
  pqxx::connection conn{db.direct_url()};
  pqxx::work tx{conn};
  auto post_id =
      tx.exec_params1("SELECT id FROM \"Post\" WHERE \"jobId\" = $1", job_id)[0]
          .as<std::string>();
  EXPECT_EQ(status["jobId"], job_id);
  EXPECT_EQ(status["postId"], post_id);
  EXPECT_EQ(get("mallory", job_id).status, 404u) << "another author's job";
  EXPECT_EQ(get("alice", "999999").status, 404u);
  EXPECT_EQ(get("alice", job_id).headers["x-ratelimit-limit"], "100");
  EXPECT_EQ(http_call(server.port(), "GET", "/v1/post/jobs/" + job_id).status,
            401u);
}

TEST_F(ServerTest, JobStatusWhileWaiting) {
  migrate();
  // Writers can't drain.
  server_process server{
      env({{"DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere"}})};
  ASSERT_TRUE(eventually(
      [&] {
        try {
          return http_call(server.port(), "GET", "/health/queue").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      20s))
      << server.output();
  auto r = create(server.port(), "stays waiting");
  ASSERT_EQ(r.status, 202u) << r.body;
  std::string job_id = nlohmann::json::parse(r.body)["jobId"];
  auto s = http_call(server.port(), "GET", "/v1/post/jobs/" + job_id, {},
                     {{"Authorization", "Bearer " + token("alice")}});
  ASSERT_EQ(s.status, 200u) << s.body;
  EXPECT_EQ(s.body, R"({"jobId":")" + job_id +
                        R"(","status":"waiting","attemptsMade":0})");
}

// THROTTLE_STORE=redis: one limit across instances (SPEC §2).
TEST_F(ServerTest, RedisThrottleStoreIsSharedByInstances) {
  migrate();
  // QUEUE_PREFIX: its own throttle keys.
  const auto e = env({{"THROTTLE_STORE", "redis"},
                      {"THROTTLE_LIMIT", "3"},
                      {"THROTTLE_TTL", "60000"},
                      {"QUEUE_PREFIX", unique_name("p")}});
  START_SERVER(a, e);
  START_SERVER(b, e);
  EXPECT_EQ(create(a.port(), "1").status, 202u);
  auto second = create(b.port(), "2");
  EXPECT_EQ(second.status, 202u);
  EXPECT_EQ(second.headers["x-ratelimit-remaining"], "1");
  EXPECT_EQ(create(a.port(), "3").status, 202u);
  auto refused = create(b.port(), "4");
  EXPECT_EQ(refused.status, 429u) << refused.body;
  EXPECT_FALSE(refused.headers["retry-after"].empty());
  EXPECT_EQ(create(a.port(), "5").status, 429u);
}

// WRITERS=0 is an ingest-only instance: it queues and never writes; a writer
// instance on the same queue persists what it accepted, once each.
TEST_F(ServerTest, IngestOnlyInstanceQueuesAndAWriterInstanceDrains) {
  migrate();
  START_SERVER(ingest, env({{"WRITERS", "0"}}));
  constexpr int n = 20;
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(create(ingest.port(), "queued " + std::to_string(i)).status,
              202u);
  ASSERT_TRUE(eventually([&] {
    auto q = http_call(ingest.port(), "GET", "/health/queue");
    return q.status == 200 &&
           nlohmann::json::parse(q.body)["waiting"].get<int>() == n;
  })) << ingest.output();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(rows(), 0);

  START_SERVER(writer, env());
  expect_rows_of_distinct_jobs(n, writer);
}

// GET /v1/post/:id and GET /v1/post?authorId= read the rows the writers made.
TEST_F(ServerTest, ReadsPostsAndPagesAnAuthorsPosts) {
  migrate();
  START_SERVER(server, env());
  constexpr int n = 5;
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(
        create(server.port(), "carol " + std::to_string(i), "carol").status,
        202u);
  ASSERT_EQ(create(server.port(), "dave's", "dave").status, 202u);
  ASSERT_TRUE(rows_become(n + 1)) << server.output();

  std::vector<nlohmann::json> seen;
  std::string target = "/v1/post?authorId=carol&limit=2";
  for (int page = 0; page < 3; ++page) {
    auto r = http_call(server.port(), "GET", target);
    ASSERT_EQ(r.status, 200u) << r.body;
    auto body = nlohmann::json::parse(r.body);
    for (const auto& item : body["items"])
      seen.push_back(item);
    EXPECT_EQ(body["items"].size(), page < 2 ? 2u : 1u);
    if (page < 2)
      target = "/v1/post?authorId=carol&limit=2&cursor=" +
               body["nextCursor"].get<std::string>();
    else
      EXPECT_TRUE(body["nextCursor"].is_null());
  }
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(n));
  std::set<std::string> contents;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i]["authorId"], "carol");
    contents.insert(seen[i]["content"].get<std::string>());
    if (i > 0) { // newest first, ties broken by id
      EXPECT_TRUE(std::make_pair(seen[i - 1]["createdAt"], seen[i - 1]["id"]) >
                  std::make_pair(seen[i]["createdAt"], seen[i]["id"]));
    }
  }
  EXPECT_EQ(contents.size(), static_cast<std::size_t>(n));

  auto one = http_call(server.port(), "GET",
                       "/v1/post/" + seen[0]["id"].get<std::string>());
  ASSERT_EQ(one.status, 200u) << one.body;
  EXPECT_EQ(nlohmann::json::parse(one.body), seen[0]);
  EXPECT_EQ(http_call(server.port(), "GET",
                      "/v1/post/00000000-0000-4000-8000-000000000000")
                .status,
            404u);
  EXPECT_EQ(http_call(server.port(), "GET", "/v1/post?authorId=carol&limit=500")
                .status,
            400u);
}

namespace {

// A PgBouncer of the test's own, so one postd can lose its database without
// disturbing the tests running beside it.
class own_pgbouncer {
public:
  own_pgbouncer()
      : dir_(require_env("POSTD_TEST_SERVICES_DIR") + "/" +
             unique_name("pgbouncer")),
        port_(free_port()) {
    start();
  }
  ~own_pgbouncer() { stop(); }
  own_pgbouncer(const own_pgbouncer&) = delete;
  own_pgbouncer& operator=(const own_pgbouncer&) = delete;

  void start() {
    ASSERT_EQ(shell("postd_start_pgbouncer " + dir_ + " " +
                    std::to_string(port_) + " " +
                    require_env("POSTD_TEST_PG_PORT")),
              0);
  }
  void stop() { shell("postd_stop_pgbouncer " + dir_); }
  std::string url(const scratch_database& db) const {
    return "postgresql://" + require_env("POSTD_TEST_PG_USER") +
           "@127.0.0.1:" + std::to_string(port_) + "/" + db.name();
  }

private:
  std::string dir_;
  int port_;
};

} // namespace

// SIGTERM while the writers hold jobs they cannot write (database gone):
// the jobs go back to wait at once, unlocked, and a later postd writes each
// exactly once.
TEST_F(ServerTest, ShutdownGivesHeldJobsBack) {
  migrate();
  own_pgbouncer bouncer;
  const auto e = env({{"DATABASE_URL", bouncer.url(db)}});
  START_SERVER(server, e);
  bouncer.stop();
  constexpr int n = 5;
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(create(server.port(), "held " + std::to_string(i)).status, 202u);

  persistence::redis_client redis{test_redis()};
  auto count = [&](std::initializer_list<std::string> args) {
    return redis.command(std::vector<std::string>(args))->integer;
  };
  auto locks = [&] {
    auto r = redis.command({"EVAL", "return #redis.call('KEYS', ARGV[1])", "0",
                            "bull:" + queue + ":*:lock"});
    return r->integer;
  };
  const std::string active = "bull:" + queue + ":active";
  const std::string wait = "bull:" + queue + ":wait";
  // Each writer takes what is there, fails to write it, and holds it.
  ASSERT_TRUE(eventually([&] {
    return count({"LLEN", active}) > 0 &&
           count({"LLEN", active}) + count({"LLEN", wait}) == n;
  })) << server.output();
  // Every active job locked, read at one instant (the writers go on taking).
  auto unlocked_active = redis.command(
      {"EVAL",
       "return redis.call('LLEN', KEYS[1]) - #redis.call('KEYS', ARGV[1])", "1",
       active, "bull:" + queue + ":*:lock"});
  EXPECT_EQ(unlocked_active->integer, 0);

  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
  EXPECT_EQ(count({"LLEN", active}), 0);
  EXPECT_EQ(count({"LLEN", wait}), n);
  EXPECT_EQ(locks(), 0);

  bouncer.start();
  server_process again{e};
  expect_rows_of_distinct_jobs(n, again);
}

namespace {

// /metrics as name{labels} -> value; every line must be a comment (HELP or
// TYPE) or a well-formed sample.
std::map<std::string, double> scrape(int port) {
  auto r = http_call(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8");
  std::map<std::string, double> out;
  std::istringstream in{r.body};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0)
      continue;
    auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos)
      continue;
    auto name = line.substr(0, space);
    EXPECT_TRUE(name.find('{') == std::string::npos || name.back() == '}')
        << line;
    out[name] = std::stod(line.substr(space + 1));
  }
  return out;
}

} // namespace

TEST_F(ServerTest, MetricsCountTheTraffic) {
  migrate();
  START_SERVER(server, env());
  const std::string created =
      R"(http_requests_total{route="/v1/post/create",method="POST",status="202"})";
  const std::string unauthorized =
      R"(http_requests_total{route="/v1/post/create",method="POST",status="401"})";
  auto before = scrape(server.port());
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(
        create(server.port(), "counted " + std::to_string(i), "metrics").status,
        202u);
  auto bad = http_call(server.port(), "POST", "/v1/post/create", "{}",
                       {{"Content-Type", "application/json"}});
  ASSERT_EQ(bad.status, 401u);
  std::map<std::string, double> after;
  ASSERT_TRUE(eventually([&] {
    after = scrape(server.port());
    return after["postd_jobs_completed_total"] >=
           before["postd_jobs_completed_total"] + 3;
  })) << server.output();
  EXPECT_EQ(after[created] - before[created], 3);
  EXPECT_EQ(after[unauthorized] - before[unauthorized], 1);
  EXPECT_GE(
      (after
           [R"(http_request_duration_seconds_count{route="/v1/post/create",status="202"})"]),
      3);
  EXPECT_GE(after["postd_writer_batch_size_count"], 1);
  // Three creates one after the other: three round trips of one.
  EXPECT_EQ(after["postd_enqueue_batch_size_sum"] -
                before["postd_enqueue_batch_size_sum"],
            3);
  EXPECT_EQ(after[R"(postd_enqueue_batch_size_bucket{le="1"})"] -
                before[R"(postd_enqueue_batch_size_bucket{le="1"})"],
            3);
  EXPECT_EQ(after["postd_jobs_failed_total"], 0);
  EXPECT_TRUE(after.count(R"(postd_queue_jobs{state="waiting"})"));
  EXPECT_GT(after["process_resident_memory_bytes"], 0);
  EXPECT_EQ(after[R"(postd_dependency_up{dependency="redis"})"], 1);
  EXPECT_EQ(after[R"(postd_dependency_up{dependency="postgres"})"], 1);
  EXPECT_GT(after[R"(postd_dependency_latency_seconds{dependency="postgres"})"],
            0);
  // The scrapes themselves are counted, and never throttled.
  EXPECT_GE(
      (after
           [R"(http_requests_total{route="/metrics",method="GET",status="200"})"]),
      1);
}

namespace {

// Commands the Redis server ran so far (all of INFO commandstats).
long long redis_commands(persistence::redis_client& r) {
  auto reply = r.command({"INFO", "commandstats"});
  std::string text(reply->str, reply->len);
  long long total = 0;
  for (std::size_t at = text.find("calls="); at != std::string::npos;
       at = text.find("calls=", at + 6))
    total += std::stoll(text.substr(at + 6));
  return total;
}

} // namespace

// Probes are answered from the monitor's cached view: 10,000 /health
// requests over 100 connections cost Redis and PostgreSQL only the
// monitor's own checks (two a second), not one query each.
TEST_F(ServerTest, HealthProbesNeverReachTheDependencies) {
  migrate();
  // No writer traffic: what remains is the monitor's.
  START_SERVER(server, env({{"WRITERS", "0"}}));
  persistence::redis_client redis{test_redis()};
  pqxx::connection pg{db.direct_url()};
  auto transactions = [&] {
    pqxx::nontransaction tx{pg};
    return tx
        .exec1("SELECT xact_commit + xact_rollback FROM pg_stat_database "
               "WHERE datname = current_database()")[0]
        .as<long long>();
  };
  // pg_stat_database lags (stats are flushed about once a second).
  auto settled = [&] {
    std::this_thread::sleep_for(1500ms);
    return transactions();
  };
  long long redis_before = redis_commands(redis), pg_before = settled();
  auto started = std::chrono::steady_clock::now();

  constexpr int connections = 100, per_connection = 100;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < connections; ++c)
    clients.emplace_back([&] {
      raw_client conn{server.port(), 10s};
      for (int i = 0; i < per_connection; ++i) {
        conn.send(raw_request("GET", "/health"));
        if (conn.read_response().status == 200)
          ++ok;
      }
    });
  for (auto& t : clients)
    t.join();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  long long redis_used = redis_commands(redis) - redis_before - 1;
  long long pg_used = settled() - pg_before;
  EXPECT_EQ(ok.load(), connections * per_connection);
  // The monitor: every 500 ms one MULTI of counts (8 commands), INFO
  // replication and one SELECT 1; allow three extra checks for the edges of
  // the window.
  double checks = (seconds + 1.5) * 2 + 3;
  std::cout << "[ health   ] " << connections * per_connection << " probes in "
            << seconds << " s: " << redis_used << " Redis commands, " << pg_used
            << " PostgreSQL transactions" << std::endl;
  EXPECT_LE(redis_used, static_cast<long long>(checks * 9)) << seconds << " s";
  EXPECT_LE(pg_used, static_cast<long long>(checks) + 2) << seconds << " s";
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}

// /health/queue is what Redis holds, state by state (an ingest-only
// instance, so nothing moves while it is compared).
TEST_F(ServerTest, QueueHealthEqualsADirectCountInRedis) {
  migrate();
  START_SERVER(server, env({{"WRITERS", "0"}}));
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(create(server.port(), "counted " + std::to_string(i)).status,
              202u);
  persistence::redis_client redis{test_redis()};
  const std::string k = "bull:" + queue + ":";
  redis.command({"ZADD", k + "delayed", "4102444800000", "900"});
  redis.command({"ZADD", k + "failed", "1", "901"});
  redis.command({"ZADD", k + "failed", "2", "902"});
  redis.command({"ZADD", k + "completed", "3", "903"});
  redis.command({"LPUSH", k + "active", "904"});
  auto direct = [&](const char* cmd, const char* suffix) {
    return redis.command({cmd, k + suffix})->integer;
  };
  nlohmann::json q;
  ASSERT_TRUE(eventually([&] {
    q = nlohmann::json::parse(
        http_call(server.port(), "GET", "/health/queue").body, nullptr, false);
    return q.is_object() && q["failed"] == 2 && q["active"] == 1;
  })) << q.dump();
  EXPECT_EQ(q["waiting"], direct("LLEN", "wait"));
  EXPECT_EQ(q["active"], direct("LLEN", "active"));
  EXPECT_EQ(q["delayed"], direct("ZCARD", "delayed"));
  EXPECT_EQ(q["failed"], direct("ZCARD", "failed"));
  EXPECT_EQ(q["completed"], direct("ZCARD", "completed"));
  EXPECT_EQ(q["waiting"], 5);
  EXPECT_EQ(q["total"], 5 + 1 + 1);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}
