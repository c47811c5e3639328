#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/api.hpp"
#include "http/query.hpp"

using namespace postd;
using namespace postd::http;

namespace {

// Answers synchronously, as scripted by the test.
class fake_backend : public backend {
public:
  void create(std::string key, actors::create_post post,
              actors::create_callback done) override {
    keys.push_back(key);
    posts.push_back(post);
    done(outcome);
  }
  void enqueue(actors::create_post post, core::throttle_decision d,
               actors::create_callback done) override {
    posts.push_back(post);
    enqueued_with.push_back(d);
    done(outcome);
  }
  void throttle(std::string key, actors::throttle_callback done) override {
    keys.push_back(key);
    done(decision);
  }
  void find_job(std::string author, std::string job_id,
                actors::job_callback done) override {
    queries.emplace_back(author, job_id);
    done(lookup);
  }
  void find_posts(actors::posts_query q) override {
    post_queries.push_back(q);
    q.reply(page);
  }
  std::shared_ptr<const actors::health_view> health() const override {
    return view;
  }
  actors::writer_pool_status writers() const override { return pool; }
  actors::supervisor_status services() const override { return root; }
  bool can_wait() const override { return writers_here; }
  void
  await_post(const std::string& post_id, std::chrono::milliseconds within,
             std::function<void(std::optional<std::string>)> done) override {
    awaited.emplace_back(post_id, within);
    done(persisted_row);
  }
  void cancel_wait(const std::string& post_id) override {
    cancelled.push_back(post_id);
  }

  actors::create_outcome outcome{
      actors::create_status::queued, "17", {true, 100, 99, 60, 0}};
  // None: the throttle actor is restarting.
  std::optional<core::throttle_decision> decision =
      core::throttle_decision{true, 100, 99, 60, 0};
  std::shared_ptr<actors::health_view> view =
      std::make_shared<actors::health_view>();
  actors::writer_pool_status pool{4, 4, 0, false};
  actors::supervisor_status root;
  std::vector<std::string> keys;
  std::vector<actors::create_post> posts;
  std::vector<core::throttle_decision> enqueued_with; // enqueue()'s
  actors::job_lookup lookup{
      actors::job_lookup::result::not_found, {}, 0, {}, {}};
  std::vector<std::pair<std::string, std::string>> queries;
  actors::posts_page page;
  std::vector<actors::posts_query> post_queries;
  // Prefer: wait: what await_post answers (the row, or nothing in time).
  std::optional<std::string> persisted_row;
  bool writers_here = true;
  std::vector<std::pair<std::string, std::chrono::milliseconds>> awaited;
  std::vector<std::string> cancelled;
};

api_request request(std::string method, std::string target) {
  api_request r;
  r.method = std::move(method);
  r.target = std::move(target);
  return r;
}

struct ApiTest : ::testing::Test {
  fake_backend be;
  token_verifier tokens{"secret"};
  api handler{api_settings{"post-creation", 10, false}, tokens, be};

  // The monitors checked both dependencies just now.
  void checked_now() {
    be.view->taken_at = std::chrono::steady_clock::now();
    be.view->database_at = be.view->taken_at;
  }

  // The answer to GET `target`.
  api_response answer_get(std::string target) {
    return call(request("GET", std::move(target)));
  }

  // An Authorization header for `author`, valid for a minute.
  std::string bearer(const std::string& author) const {
    return "Bearer " + tokens.issue(author, std::chrono::seconds{60});
  }

  api_response call(api_request req) {
    api_response out;
    bool called = false;
    handler.handle(std::move(req), [&](api_response r) {
      called = true;
      out = std::move(r);
    });
    EXPECT_TRUE(called);
    return out;
  }

  api_request create(std::string body) const {
    auto r = request("POST", "/v1/post/create");
    r.authorization = bearer("author-1");
    r.content_type = "application/json";
    r.peer_ip = "10.0.0.1";
    r.body = std::move(body);
    return r;
  }

  static std::string header(const api_response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
      if (k == name)
        return v;
    return "<none>";
  }
};

} // namespace

TEST_F(ApiTest, CreateAnswers202WithTheSeedBody) {
  auto r = call(create(R"({"content":"hi"})"));
  EXPECT_EQ(r.status, 202u);
  EXPECT_EQ(
      r.body,
      R"({"message":"Post creation queued successfully","jobId":"17","status":"processing"})");
  EXPECT_EQ(header(r, "Location"), "/v1/post/jobs/17");
  EXPECT_EQ(header(r, "X-RateLimit-Limit"), "100");
  EXPECT_EQ(header(r, "X-RateLimit-Remaining"), "99");
  EXPECT_EQ(header(r, "X-RateLimit-Reset"), "60");
  ASSERT_EQ(be.posts.size(), 1u);
  EXPECT_EQ(be.posts[0].author, "author-1");
  EXPECT_EQ(be.posts[0].content, "hi");
  EXPECT_EQ(be.keys[0], "POST /v1/post/create|10.0.0.1");
}

TEST_F(ApiTest, UnauthenticatedIs401AndStillCountsTowardTheLimit) {
  auto req = create(R"({"content":"hi"})");
  req.authorization = "Bearer nope";
  auto r = call(req);
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"statusCode":401,"message":"Unauthorized"})");
  EXPECT_EQ(be.keys.size(), 1u);
  EXPECT_TRUE(be.posts.empty());
}

TEST_F(ApiTest, ThrottledBeatsOtherErrors) {
  be.decision = core::throttle_decision{false, 100, 0, 60, 42};
  auto req = create("{");
  auto r = call(req);
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(
      r.body,
      R"({"statusCode":429,"message":"ThrottlerException: Too Many Requests"})");
  EXPECT_EQ(header(r, "Retry-After"), "42");
}

// No verdict: the throttle actor is restarting. Every throttled route
// answers 503 at once, before anything else is looked at.
TEST_F(ApiTest, ARestartingThrottleIsAnswered503AtOnce) {
  be.decision = std::nullopt;
  for (const auto* target :
       {"/v1/post/abc", "/v1/post?authorId=u1", "/v1/post/jobs/17"}) {
    SCOPED_TRACE(target);
    auto r = answer_get(target);
    EXPECT_EQ(r.status, 503u);
    EXPECT_EQ(
        r.body,
        R"({"statusCode":503,"message":"Rate limiter restarting, try again later","error":"Service Unavailable"})");
    EXPECT_EQ(header(r, "Retry-After"), "1");
  }
  EXPECT_EQ(call(create("{")).status, 503u); // refused creates too
  EXPECT_TRUE(be.queries.empty());
  EXPECT_TRUE(be.post_queries.empty());
}

TEST_F(ApiTest, ThrottledCreate) {
  be.outcome = {actors::create_status::throttled, "", {false, 100, 0, 60, 7}};
  auto r = call(create(R"({"content":"hi"})"));
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(header(r, "Retry-After"), "7");
}

TEST_F(ApiTest, ValidationErrorsUseNestsShape) {
  auto r = call(create(R"({"content":"","x":1})"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(
      r.body,
      R"({"statusCode":400,"message":["property x should not exist","content must not be empty"],"error":"Bad Request"})");
  EXPECT_TRUE(be.posts.empty());
}

TEST_F(ApiTest, NonJsonIs415) {
  auto req = create(R"({"content":"hi"})");
  req.content_type = "text/plain";
  EXPECT_EQ(call(req).status, 415u);
}

TEST_F(ApiTest, BadIdempotencyKeyIs400) {
  auto req = create(R"({"content":"hi"})");
  req.has_idempotency_key = true;
  req.idempotency_key = "";
  EXPECT_EQ(call(req).status, 400u);
  req.idempotency_key = "k1";
  EXPECT_EQ(call(req).status, 202u);
  EXPECT_EQ(be.posts.back().idempotency_key, "k1");
}

TEST_F(ApiTest, QueueProblemsAre503WithRetryAfter) {
  be.outcome = {actors::create_status::unavailable, "", {}};
  auto r = call(create(R"({"content":"hi"})"));
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(header(r, "Retry-After"), "<none>");
  be.outcome = {actors::create_status::queue_full, "", {}};
  EXPECT_EQ(call(create(R"({"content":"hi"})")).status, 503u);
}

TEST_F(ApiTest, UnknownRoutesAndMethods) {
  auto res = answer_get("/nope");
  EXPECT_EQ(res.status, 404u);
  EXPECT_EQ(
      res.body,
      R"({"statusCode":404,"message":"Cannot GET /nope","error":"Not Found"})");
  EXPECT_EQ(answer_get("/v1/post/create").status, 405u);
}

// As Express routes under Nest: a trailing slash and letter case are ignored.
TEST_F(ApiTest, RoutesIgnoreOneTrailingSlashAndCase) {
  auto r = create(R"({"content":"hi"})");
  r.target = "/v1/post/create/";
  EXPECT_EQ(call(r).status, 202u);
  r.target = "/V1/Post/CREATE?x=1";
  EXPECT_EQ(call(r).status, 202u);
  r.target = "/v1/post/create//";
  EXPECT_EQ(call(r).status, 404u);
  r.target = "/v1/posts/create";
  EXPECT_EQ(call(r).status, 404u);
  EXPECT_EQ(be.posts.size(), 2u);
  EXPECT_NE(answer_get("/Health/").status, 404u);
  auto job = request("GET", "/v1/post/jobs/AbC/");
  job.authorization = bearer("a");
  call(job);
  ASSERT_EQ(be.queries.size(), 1u);
  EXPECT_EQ(be.queries[0].second, "AbC"); // the id keeps its case
}

TEST_F(ApiTest, TrustProxyTakesTheFirstForwardedAddress) {
  api trusting{api_settings{"post-creation", 10, true}, tokens, be};
  api_request r;
  r.peer_ip = "127.0.0.1";
  r.forwarded_for = " 203.0.113.9 , 10.0.0.2";
  EXPECT_EQ(trusting.client_ip(r), "203.0.113.9");
  EXPECT_EQ(handler.client_ip(r), "127.0.0.1");
}

TEST_F(ApiTest, HealthOkShape) {
  checked_now();
  be.view->database = {true, "", 1};
  be.view->queue = {true, "", 1};
  be.view->counts.active = 2;
  be.view->counts.waiting = 5;
  auto res = answer_get("/health");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(
      res.body,
      R"({"status":"ok","info":{"database":{"status":"up"},"queue:post-creation":{"status":"up","active":2,"waiting":5}},"error":{},"details":{"database":{"status":"up"},"queue:post-creation":{"status":"up","active":2,"waiting":5}}})");
  EXPECT_EQ(header(res, "Cache-Control"),
            "no-cache, no-store, must-revalidate");
}

TEST_F(ApiTest, HealthDownShape) {
  checked_now();
  be.view->database = {false, "connection refused", 1};
  be.view->queue = {true, "", 1};
  auto res = answer_get("/health");
  EXPECT_EQ(res.status, 503u);
  auto body = nlohmann::json::parse(res.body);
  EXPECT_EQ(body["status"], "error");
  EXPECT_EQ(body["error"]["database"]["status"], "down");
  EXPECT_EQ(body["error"]["database"]["message"], "connection refused");
  EXPECT_EQ(body["info"]["queue:post-creation"]["status"], "up");
  EXPECT_EQ(body["details"].size(), 2u);
}

TEST_F(ApiTest, EscalatedWritersMakeHealthDown) {
  checked_now();
  be.view->database = {true, "", 1};
  be.view->queue = {true, "", 1};
  be.pool = {4, 3, 12, true};
  auto res = answer_get("/health");
  EXPECT_EQ(res.status, 503u);
  auto body = nlohmann::json::parse(res.body);
  EXPECT_EQ(body["status"], "error");
  EXPECT_EQ(body["error"]["writers"]["status"], "down");
  EXPECT_EQ(body["error"]["writers"]["message"],
            "writers keep crashing (12 restarts; 3 of 4 running)");
  EXPECT_EQ(body["details"]["writers"], body["error"]["writers"]);
  EXPECT_EQ(body["info"]["database"]["status"], "up");
  // Restarts alone, without escalation, leave the old shape untouched.
  be.pool = {4, 4, 12, false};
  res = answer_get("/health");
  EXPECT_EQ(res.status, 200u);
  EXPECT_FALSE(nlohmann::json::parse(res.body)["details"].contains("writers"));
}

TEST_F(ApiTest, EscalatedActorsMakeHealthDownAndShowInMetrics) {
  checked_now();
  be.view->database = {true, "", 1};
  be.view->queue = {true, "", 1};
  be.root = {{{"enqueue", false, 11}, {"reader-0", true, 1}}, 12, true};
  auto res = answer_get("/health");
  EXPECT_EQ(res.status, 503u);
  auto body = nlohmann::json::parse(res.body);
  EXPECT_EQ(body["error"]["actors"]["status"], "down");
  EXPECT_EQ(body["error"]["actors"]["message"],
            "actors keep crashing (12 restarts; restarting: enqueue)");
  auto metrics = answer_get("/metrics").body;
  EXPECT_NE(
      metrics.find("\npostd_actor_restarts_total{actor=\"enqueue\"} 11\n"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("\npostd_actor_running{actor=\"enqueue\"} 0\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("\npostd_actor_running{actor=\"reader-0\"} 1\n"),
            std::string::npos);
  // Restarts alone, without escalation, leave the old shape untouched.
  be.root.escalated = false;
  EXPECT_EQ(answer_get("/health").status, 200u);
}

TEST_F(ApiTest, LivenessIsTheProcessAnswering) {
  // No monitor view at all (starting), dependencies unknown: still alive.
  auto res = answer_get("/health/live");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, R"({"status":"ok"})");
  EXPECT_EQ(header(res, "Cache-Control"),
            "no-cache, no-store, must-revalidate");
  EXPECT_EQ(call(request("POST", "/health/live")).status, 405u);
}

TEST_F(ApiTest, ReadinessWaitsForTheFirstCheckAndEndsWithDraining) {
  EXPECT_EQ(answer_get("/health/ready").status, 503u)
      << "starting: no check yet";
  checked_now();
  be.view->database = {true, "", 1};
  be.view->queue = {true, "", 1};
  auto res = answer_get("/health/ready");
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.body, answer_get("/health").body)
      << "ready and healthy: the same report";
  be.view->database = {false, "connection refused", 1};
  EXPECT_EQ(answer_get("/health/ready").status, 503u) << "a dependency down";
  be.view->database = {true, "", 1};
  handler.start_draining();
  res = answer_get("/health/ready");
  EXPECT_EQ(res.status, 503u);
  auto body = nlohmann::json::parse(res.body);
  EXPECT_EQ(body["error"]["postd"]["message"], "shutting down");
  EXPECT_EQ(answer_get("/health").status, 200u)
      << "/health keeps reporting dependencies";
}

TEST_F(ApiTest, StaleViewCountsAsDown) {
  be.view->taken_at =
      std::chrono::steady_clock::now() - std::chrono::seconds{10};
  be.view->database_at = be.view->taken_at;
  be.view->database = {true, "", 1};
  be.view->queue = {true, "", 1};
  EXPECT_EQ(answer_get("/health").status, 503u);
  EXPECT_EQ(answer_get("/health/queue").status, 503u);
}

TEST_F(ApiTest, AHangingCheckMakesOnlyItsDependencyStale) {
  // The database check hangs (PostgreSQL down behind PgBouncer): its last
  // result ages, the queue's stays recent and up.
  be.view->taken_at = std::chrono::steady_clock::now();
  be.view->database_at =
      std::chrono::steady_clock::now() - std::chrono::seconds{10};
  be.view->database = {true, "", 1};
  be.view->queue = {true, "", 1};
  auto res = answer_get("/health");
  EXPECT_EQ(res.status, 503u);
  auto body = nlohmann::json::parse(res.body);
  EXPECT_EQ(body["error"]["database"]["message"],
            "no recent check (the check hangs)");
  EXPECT_EQ(body["info"]["queue:post-creation"]["status"], "up");
  EXPECT_EQ(answer_get("/health/queue").status, 200u);
}

TEST_F(ApiTest, HealthQueueShape) {
  checked_now();
  be.view->queue = {true, "", 1};
  be.view->counts = {3, 1, 150, 2, 4, 0};
  auto res = answer_get("/health/queue");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(
      res.body,
      R"({"queue":"post-creation","waiting":3,"active":1,"completed":150,"failed":2,"delayed":4,"total":8})");
}

TEST_F(ApiTest, JobStatusForItsAuthor) {
  be.lookup = {actors::job_lookup::result::found, "completed", 0, "post-9", {}};
  auto r = request("GET", "/v1/post/jobs/17");
  r.authorization = bearer("author-1");
  auto res = call(r);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(
      res.body,
      R"({"jobId":"17","status":"completed","attemptsMade":0,"postId":"post-9"})");
  EXPECT_EQ(header(res, "X-RateLimit-Limit"), "100");
  ASSERT_EQ(be.queries.size(), 1u);
  EXPECT_EQ(be.queries[0],
            (std::pair<std::string, std::string>{"author-1", "17"}));
  EXPECT_EQ(be.keys.back(), "GET /v1/post/jobs/:jobId|");
}

TEST_F(ApiTest, JobStatusFailedCarriesItsReason) {
  be.lookup = {actors::job_lookup::result::found, "failed", 3, {}, "boom"};
  auto r = request("GET", "/v1/post/jobs/5");
  r.authorization = bearer("a");
  EXPECT_EQ(
      call(r).body,
      R"({"jobId":"5","status":"failed","attemptsMade":3,"failedReason":"boom"})");
}

TEST_F(ApiTest, JobStatusErrors) {
  auto r = request("GET", "/v1/post/jobs/5");
  EXPECT_EQ(call(r).status, 401u);
  r.authorization = bearer("a");
  EXPECT_EQ(call(r).status, 404u); // not found (or someone else's)
  r.target = "/v1/post/jobs/a%20b";
  EXPECT_EQ(call(r).status, 404u);
  EXPECT_EQ(be.queries.size(),
            1u); // an implausible id never reaches the backend
  be.lookup = {actors::job_lookup::result::unavailable, {}, 0, {}, {}};
  r.target = "/v1/post/jobs/6";
  EXPECT_EQ(call(r).status, 503u);
  r.method = "DELETE";
  EXPECT_EQ(call(r).status, 405u);
}

namespace {

core::post stored(int i) {
  return {"id-" + std::to_string(i), "post " + std::to_string(i), "bob",
          "2026-11-26T12:00:0" + std::to_string(i) + ".000Z", ""};
}

api_request get(std::string target) {
  auto r = request("GET", std::move(target));
  r.peer_ip = "10.0.0.2";
  return r;
}

} // namespace

TEST_F(ApiTest, GetPostAnswersTheRow) {
  be.page = {actors::posts_page::result::found, {stored(1)}};
  auto r = call(get("/v1/post/id-1"));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(
      r.body,
      R"({"id":"id-1","content":"post 1","authorId":"bob","createdAt":"2026-11-26T12:00:01.000Z"})");
  EXPECT_EQ(header(r, "X-RateLimit-Limit"), "100");
  ASSERT_EQ(be.post_queries.size(), 1u);
  EXPECT_EQ(be.post_queries[0].post_id, "id-1");
  EXPECT_EQ(be.keys.back(), "GET /v1/post/:id|10.0.0.2");
}

TEST_F(ApiTest, GetPostErrors) {
  be.page = {actors::posts_page::result::not_found, {}};
  auto r = call(get("/v1/post/nope"));
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(
      r.body,
      R"({"statusCode":404,"message":"Post nope not found","error":"Not Found"})");
  EXPECT_EQ(call(get("/v1/post/a%20b")).status, 404u);
  EXPECT_EQ(be.post_queries.size(), 1u); // never reached the database
  be.page = {actors::posts_page::result::unavailable, {}};
  auto down = call(get("/v1/post/x"));
  EXPECT_EQ(down.status, 503u);
  EXPECT_EQ(header(down, "Retry-After"), "1");
  auto del = get("/v1/post/x");
  del.method = "DELETE";
  EXPECT_EQ(call(del).status, 405u);
  be.decision->allowed = false;
  EXPECT_EQ(call(get("/v1/post/x")).status, 429u);
}

TEST_F(ApiTest, ListPostsPagesWithACursor) {
  be.page = {actors::posts_page::result::found,
             {stored(3), stored(2), stored(1)}};
  auto r = call(get("/v1/post?authorId=bob&limit=2"));
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_EQ(be.post_queries.size(), 1u);
  EXPECT_EQ(be.post_queries[0].author_id, "bob");
  EXPECT_EQ(be.post_queries[0].limit, 3u); // one more than asked
  EXPECT_FALSE(be.post_queries[0].after);
  auto body = nlohmann::json::parse(r.body);
  ASSERT_EQ(body["items"].size(), 2u);
  EXPECT_EQ(body["items"][1]["id"], "id-2");
  auto cursor = body["nextCursor"].get<std::string>();
  EXPECT_EQ(cursor, encode_cursor(stored(2)));

  be.page = {actors::posts_page::result::found, {stored(1)}};
  r = call(get("/v1/post?authorId=bob&limit=2&cursor=" + cursor));
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_TRUE(be.post_queries[1].after);
  EXPECT_EQ(be.post_queries[1].after->id, "id-2");
  EXPECT_EQ(be.post_queries[1].after->created_at, "2026-11-26T12:00:02.000Z");
  body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["items"].size(), 1u);
  EXPECT_TRUE(body["nextCursor"].is_null());

  be.page = {actors::posts_page::result::found, {}};
  EXPECT_EQ(call(get("/v1/post/?authorId=nobody")).body,
            R"({"items":[],"nextCursor":null})");
  EXPECT_EQ(be.post_queries.back().limit, 21u); // default 20
  EXPECT_EQ(be.keys.back(), "GET /v1/post|10.0.0.2");
}

TEST_F(ApiTest, ListPostsRefusesBadParameters) {
  for (const char* target :
       {"/v1/post", "/v1/post?authorId=", "/v1/post?authorId=a&limit=0",
        "/v1/post?authorId=a&limit=101", "/v1/post?authorId=a&limit=x",
        "/v1/post?authorId=a&limit=-1", "/v1/post?authorId=a&cursor=zz",
        "/v1/post?authorId=a&cursor=", "/v1/post?authorId=%ZZ",
        "/v1/post?authorId=a%00"}) {
    auto r = call(get(target));
    EXPECT_EQ(r.status, 400u) << target;
    EXPECT_TRUE(nlohmann::json::parse(r.body)["message"].is_array()) << target;
  }
  EXPECT_TRUE(be.post_queries.empty());
  EXPECT_EQ(be.keys.size(), 10u); // each still counted by the throttle
}

TEST(Query, DecodesParameters) {
  auto q = parse_query("/x?a=1&b=two+words&c=%C3%A9&a=2&flag&=v");
  ASSERT_TRUE(q);
  EXPECT_EQ((*q)["a"], "1"); // the first wins
  EXPECT_EQ((*q)["b"], "two words");
  EXPECT_EQ((*q)["c"], "\xC3\xA9");
  EXPECT_EQ((*q)["flag"], "");
  EXPECT_TRUE(parse_query("/x")->empty());
  EXPECT_FALSE(parse_query("/x?a=%4"));
  EXPECT_FALSE(parse_query("/x?a=%G0"));
  EXPECT_FALSE(parse_query("/x?a=%00"));
}

TEST(Query, CursorsRoundTripAndRefuseForgeries) {
  core::post p;
  p.id = "3f1c2b8e-0000-4000-8000-000000000001";
  p.created_at = "2026-02-28T23:59:59.999Z";
  auto back = decode_cursor(encode_cursor(p));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, p.id);
  EXPECT_EQ(back->created_at, p.created_at);
  auto forged = [](const std::string& plain) {
    core::post f;
    f.created_at = plain.substr(0, plain.find('|'));
    f.id = plain.substr(plain.find('|') + 1);
    return decode_cursor(encode_cursor(f)).has_value();
  };
  EXPECT_TRUE(forged("2024-02-29T00:00:00.000Z|x")); // a leap day
  for (const char* plain :
       {"2026-02-30T00:00:00.000Z|x", // no such day
        "2026-13-01T00:00:00.000Z|x", "2026-01-01T24:00:00.000Z|x",
        "2026-01-01 00:00:00.000Z|x", "2026-01-01T00:00:00.000Z|",
        "2026-01-01T00:00:00.000Z|a\nb"})
    EXPECT_FALSE(forged(plain)) << plain;
  for (const std::string& cursor :
       {std::string("abc"), std::string("zz"), std::string(400, 'a')})
    EXPECT_FALSE(decode_cursor(cursor)) << cursor;
}

TEST_F(ApiTest, ReadRoutesRefuseOtherMethodsWithAllow) {
  for (const char* target : {"/v1/post/jobs/7", "/v1/post/abc", "/v1/post",
                             "/health", "/health/queue", "/health/live",
                             "/health/ready", "/metrics", "/dashboard"}) {
    SCOPED_TRACE(target);
    auto res = call(request("DELETE", target));
    EXPECT_EQ(res.status, 405u) << res.body;
    EXPECT_EQ(header(res, "Allow"), "GET, HEAD");
    EXPECT_EQ(nlohmann::json::parse(res.body)["message"],
              std::string("Cannot DELETE ") + target);
  }
  EXPECT_EQ(header(answer_get("/v1/post/create"), "Allow"), "POST");
}

// The operators' page: the embedded HTML, never cached across builds, with
// a policy that lets it fetch nothing but postd's own endpoints; like
// /health it is not throttled.
TEST_F(ApiTest, DashboardIsTheEmbeddedPageUnderAStrictPolicy) {
  for (const char* target : {"/dashboard", "/Dashboard/"}) {
    auto res = answer_get(target);
    EXPECT_EQ(res.status, 200u) << target;
    EXPECT_EQ(res.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(res.body.rfind("<!doctype html>", 0), 0u)
        << res.body.substr(0, 80);
    EXPECT_EQ(header(res, "Cache-Control"), "no-cache");
    auto csp = header(res, "Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  }
  EXPECT_TRUE(be.keys.empty()); // the throttle was never asked
  EXPECT_EQ(call(request("HEAD", "/dashboard")).status, 200u);
}

// The gauges the alerts compare: writers configured against running, and
// the queue's Redis replicas online against ACK_REPLICAS.
TEST_F(ApiTest, MetricsShowWritersConfiguredAndReplicasAgainstAckReplicas) {
  api_settings settings{"post-creation", 10, false};
  settings.ack_replicas = 2;
  api acked{settings, tokens, be};
  be.pool = {4, 3, 1, false};
  be.view->replication.role = "master";
  be.view->replication.replicas = {{"127.0.0.1:6380", "online", 0, 0},
                                   {"127.0.0.1:6381", "wait_bgsave", 0, 0}};
  std::string metrics;
  acked.handle(request("GET", "/metrics"),
               [&](api_response r) { metrics = std::move(r.body); });
  for (const char* line :
       {"\npostd_writers_configured 4\n", "\npostd_writers_running 3\n",
        "\npostd_redis_replicas_online 1\n", "\npostd_redis_ack_replicas 2\n"})
    EXPECT_NE(metrics.find(line), std::string::npos) << line << metrics;
}

// Prefer: wait=N: the post chosen its id up front (so the wait is in place
// before a writer can persist it), then 201 with the post once persisted.
TEST_F(ApiTest, PreferWaitAnswers201WithThePostOncePersisted) {
  be.persisted_row = "row-1";
  be.page.outcome = actors::posts_page::result::found;
  be.page.items = {
      {"row-1", "hello", "author-1", "2026-11-29T10:00:00.000Z", "17"}};
  auto req = create(R"({"content":"hello"})");
  req.prefer = "wait=5";
  auto res = call(std::move(req));
  ASSERT_EQ(res.status, 201u) << res.body;
  EXPECT_EQ(nlohmann::json::parse(res.body),
            nlohmann::json::parse(
                R"({"id":"row-1","content":"hello","authorId":"author-1",)"
                R"("createdAt":"2026-11-29T10:00:00.000Z","images":[]})"));
  EXPECT_EQ(header(res, "Location"), "/v1/post/row-1");
  EXPECT_EQ(header(res, "Preference-Applied"), "wait=5");
  EXPECT_EQ(header(res, "X-RateLimit-Limit"), "100");
  ASSERT_EQ(be.awaited.size(), 1u);
  ASSERT_EQ(be.posts.size(), 1u);
  EXPECT_EQ(be.awaited[0].first, be.posts[0].post_id); // waited for its own
  EXPECT_EQ(be.awaited[0].second, std::chrono::seconds{5});
  ASSERT_EQ(be.post_queries.size(), 1u);
  EXPECT_EQ(be.post_queries[0].post_id, "row-1");
}

// Not persisted in time: the usual 202, saying the wait was honoured.
TEST_F(ApiTest, PreferWaitAnswers202WhenNotPersistedInTime) {
  auto req = create(R"({"content":"hello"})");
  req.prefer = "respond-async, wait=30";
  auto res = call(std::move(req));
  ASSERT_EQ(res.status, 202u) << res.body;
  EXPECT_EQ(nlohmann::json::parse(res.body)["jobId"], "17");
  EXPECT_EQ(header(res, "Preference-Applied"), "wait=10"); // capped
  EXPECT_TRUE(be.post_queries.empty());
}

// A create that was not queued (here a duplicate Idempotency-Key, whose post
// is an earlier one) answers at once, and its wait is dropped.
TEST_F(ApiTest, PreferWaitOnACreateNotQueuedAnswersAtOnce) {
  be.outcome.status = actors::create_status::duplicate;
  auto req = create(R"({"content":"hello"})");
  req.prefer = "wait=5";
  auto res = call(std::move(req));
  EXPECT_EQ(res.status, 202u);
  EXPECT_EQ(header(res, "Preference-Applied"), "<none>");
  ASSERT_EQ(be.cancelled.size(), 1u);
  EXPECT_EQ(be.cancelled[0], be.posts[0].post_id);
}

// Without Prefer the post's id is the enqueue actor's to give.
TEST_F(ApiTest, WithoutPreferNothingWaits) {
  auto res = call(create(R"({"content":"hello"})"));
  EXPECT_EQ(res.status, 202u);
  EXPECT_EQ(header(res, "Preference-Applied"), "<none>");
  EXPECT_TRUE(be.awaited.empty());
  EXPECT_EQ(be.posts.at(0).post_id, "");
}

// An ingest-only instance never hears of rows: Prefer: wait is not applied.
TEST_F(ApiTest, PreferWaitIsNotAppliedWhereNoWriterRuns) {
  be.writers_here = false;
  auto req = create(R"({"content":"hello"})");
  req.prefer = "wait=5";
  auto res = call(std::move(req));
  EXPECT_EQ(res.status, 202u);
  EXPECT_EQ(header(res, "Preference-Applied"), "<none>");
  EXPECT_TRUE(be.awaited.empty());
}

// ---- multipart creates (attachments): admitted on the header, finished
// with the form the session read ----

namespace {

struct UploadTest : ApiTest {
  api_request upload_head() const {
    auto r = request("POST", "/v1/post/create");
    r.authorization = bearer("author-1");
    r.content_type = "multipart/form-data; boundary=XyZ";
    r.peer_ip = "10.0.0.1";
    return r;
  }
  // begin_upload: the ticket when admitted, else the answer.
  std::optional<upload_ticket> admit(api_request head, api_response& answer) {
    std::optional<upload_ticket> ticket;
    handler.begin_upload(
        std::move(head), [&](upload_ticket t) { ticket = std::move(t); },
        [&](api_response r) { answer = std::move(r); });
    return ticket;
  }
  api_response finish(upload_ticket t, create_form form) {
    api_response out;
    t.respond = [&, inner = t.respond](api_response r) {
      out = r;
      inner(std::move(r));
    };
    handler.finish_upload(std::move(t), std::move(form));
    return out;
  }
};

} // namespace

TEST(Api, IsUploadOnlyForAMultipartCreate) {
  EXPECT_TRUE(api::is_upload("POST", "/v1/post/create",
                             "multipart/form-data; boundary=a"));
  EXPECT_TRUE(api::is_upload("POST", "/v1/post/create/?x=1",
                             "Multipart/Form-Data; boundary=a"));
  EXPECT_FALSE(api::is_upload("POST", "/v1/post/create", "application/json"));
  EXPECT_FALSE(api::is_upload("PUT", "/v1/post/create",
                              "multipart/form-data; boundary=a"));
  EXPECT_FALSE(
      api::is_upload("POST", "/v1/post", "multipart/form-data; boundary=a"));
}

TEST_F(UploadTest, AnAdmittedUploadIsEnqueuedWithItsFilesURLsUnthrottledAgain) {
  api_response refused;
  auto ticket = admit(upload_head(), refused);
  ASSERT_TRUE(ticket) << refused.body;
  EXPECT_EQ(be.keys, std::vector<std::string>{"POST /v1/post/create|10.0.0.1"});
  auto r = finish(std::move(*ticket),
                  create_form{"with pics", true, {"a.png", "b.jpg"}});
  EXPECT_EQ(r.status, 202u) << r.body;
  ASSERT_EQ(be.posts.size(), 1u);
  EXPECT_EQ(be.posts[0].author, "author-1");
  EXPECT_EQ(be.posts[0].content, "with pics");
  EXPECT_EQ(be.posts[0].file_urls,
            (std::vector<std::string>{"/v1/files/a.png", "/v1/files/b.jpg"}));
  // Counted once (at admission): the enqueue got the decision, no second hit.
  EXPECT_EQ(be.enqueued_with.size(), 1u);
  EXPECT_EQ(be.keys.size(), 1u);
  EXPECT_EQ(header(r, "X-RateLimit-Remaining"), "99");
}

TEST_F(UploadTest, HeaderRefusalsAnswerBeforeTheBody) {
  api_response r;
  auto head = upload_head();
  head.authorization.clear();
  EXPECT_FALSE(admit(head, r));
  EXPECT_EQ(r.status, 401u);
  head = upload_head();
  head.content_type = "multipart/form-data";
  EXPECT_FALSE(admit(head, r));
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("boundary"), std::string::npos);
  head = upload_head();
  head.has_idempotency_key = true;
  head.idempotency_key = std::string(300, 'k');
  EXPECT_FALSE(admit(head, r));
  EXPECT_EQ(r.status, 400u);
  be.decision = core::throttle_decision{false, 100, 0, 60, 7};
  EXPECT_FALSE(admit(upload_head(), r));
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(header(r, "Retry-After"), "7");
  be.decision.reset(); // the throttle restarting
  EXPECT_FALSE(admit(upload_head(), r));
  EXPECT_EQ(r.status, 503u);
  EXPECT_TRUE(be.posts.empty());
}

TEST_F(UploadTest, ABadContentIsRefusedWithTheJsonCreatesMessages) {
  api_response r;
  auto ticket = admit(upload_head(), r);
  ASSERT_TRUE(ticket);
  r = finish(std::move(*ticket), create_form{"", true, {"a.png"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("content must not be empty"), std::string::npos);
  ticket = admit(upload_head(), r);
  r = finish(std::move(*ticket), create_form{std::string(11, 'x'), true, {}});
  EXPECT_EQ(r.status, 400u); // max_content_chars is 10 here
  ticket = admit(upload_head(), r);
  r = finish(std::move(*ticket), create_form{"bad \xC3", true, {}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("UTF-8"), std::string::npos);
  EXPECT_TRUE(be.posts.empty());
}

TEST_F(UploadTest, WithoutAttachmentsMultipartIs415) {
  api no_files{api_settings{.queue_name = "post-creation",
                            .max_content_chars = 10,
                            .max_files = 0},
               tokens, be};
  api_response r;
  bool admitted = false;
  no_files.begin_upload(
      upload_head(), [&](upload_ticket) { admitted = true; },
      [&](api_response a) { r = std::move(a); });
  EXPECT_FALSE(admitted);
  EXPECT_EQ(r.status, 415u);
}

TEST_F(UploadTest, PreferWaitAnswers201WithTheImages) {
  api_response r;
  auto head = upload_head();
  head.prefer = "wait=3";
  auto ticket = admit(head, r);
  ASSERT_TRUE(ticket);
  be.persisted_row = "row-1";
  be.page.outcome = actors::posts_page::result::found;
  core::post p{"row-1", "pic", "author-1", "2026-01-01T00:00:00.000Z", "17"};
  p.images = {"/v1/files/a.png"};
  be.page.items = {p};
  r = finish(std::move(*ticket), create_form{"pic", true, {"a.png"}});
  EXPECT_EQ(r.status, 201u) << r.body;
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["images"], nlohmann::json::array({"/v1/files/a.png"}));
  EXPECT_EQ(be.enqueued_with.size(), 1u); // not throttled a second time
}
