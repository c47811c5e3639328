// The client contract of POST /v1/post/create (SPEC §3) end to end: the
// postd binary against real Redis, and PostgreSQL through PgBouncer, spoken
// to over raw TCP where an ordinary HTTP client would hide what is on the
// wire (pipelining, slow sends, oversized headers, garbage bytes).
//
// Every test starts its own server with its own queue and scratch database.
// Tokens are built here by hand (not by postd's own signer), so the verifier
// is checked against standard JWTs, and against hostile ones.

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pqxx/pqxx>

#include "persistence/redis_client.hpp"
#include "support/eventually.hpp"
#include "support/raw_client.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr const char* secret = "contract-secret";
constexpr const char* json_type = "application/json; charset=utf-8";
constexpr std::size_t kib = 1024;

using header_list = std::vector<std::pair<std::string, std::string>>;

// ------------------------------------------------------------------ tokens

std::string base64url(std::string_view in) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) {
    return static_cast<unsigned>(static_cast<unsigned char>(in[k]));
  };
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int s : {18, 12, 6, 0})
      out += alphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = byte(i) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8;
    for (int s : {18, 12, 6})
      out += alphabet[(v >> s) & 63];
  }
  return out;
}

std::string hmac(const EVP_MD* md, std::string_view key,
                 std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
       &len);
  return {reinterpret_cast<const char*>(out), len};
}

// A compact JWS: header.payload.signature, signed with HMAC(md) when md is
// set (whatever the header claims), unsigned otherwise.
std::string jwt(const json& header, const json& payload,
                const EVP_MD* md = EVP_sha256(),
                std::string_view key = secret) {
  auto input = base64url(header.dump()) + "." + base64url(payload.dump());
  return input + "." + (md != nullptr ? base64url(hmac(md, key, input)) : "");
}

std::int64_t epoch_s(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch())
      .count();
}

json claims(const std::string& sub, std::chrono::seconds ttl = 60s) {
  auto now = std::chrono::system_clock::now();
  return {{"sub", sub}, {"iat", epoch_s(now)}, {"exp", epoch_s(now + ttl)}};
}

const json hs256 = {{"alg", "HS256"}, {"typ", "JWT"}};

std::string token(const std::string& sub) {
  return jwt(hs256, claims(sub));
}

std::string bearer(const std::string& sub) {
  return "Bearer " + token(sub);
}

// ---------------------------------------------------------------- requests

std::string create_request(const std::string& body,
                           const header_list& headers) {
  return raw_request("POST", "/v1/post/create", headers, body);
}

// A well-formed create for `sub`, plus `extra` headers.
std::string good_create(const std::string& content,
                        const std::string& sub = "alice",
                        header_list extra = {}) {
  header_list h{{"Authorization", bearer(sub)},
                {"Content-Type", "application/json"}};
  h.insert(h.end(), extra.begin(), extra.end());
  return create_request(json{{"content", content}}.dump(), h);
}

// The response, or nullopt when the connection ends before one starts; a
// read that fails otherwise (no answer in time, a malformed one) fails the
// test, saying `expected` first.
std::optional<http_result> response_or_close(raw_client& c,
                                             const std::string& expected = {}) {
  try {
    return c.try_read_response();
  } catch (const std::exception& ex) {
    ADD_FAILURE() << expected << ex.what();
    return std::nullopt;
  }
}

std::string header(const http_result& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string{} : it->second;
}

// ---------------------------------------------------------- what we expect

// Every JSON answer says so, with the charset (SPEC §3).
void expect_json(const http_result& r) {
  EXPECT_EQ(header(r, "content-type"), json_type) << r.status << " " << r.body;
  EXPECT_FALSE(json::parse(r.body, nullptr, false).is_discarded()) << r.body;
}

// A 202 in the contract's shape, with its Location; returns the job id.
std::string expect_accepted(const http_result& r) {
  EXPECT_EQ(r.status, 202u) << r.body;
  expect_json(r);
  auto b = json::parse(r.body, nullptr, false);
  if (r.status != 202 || !b.is_object() || !b["jobId"].is_string()) {
    ADD_FAILURE() << "no jobId in " << r.body;
    return {};
  }
  EXPECT_EQ(b["message"], "Post creation queued successfully");
  EXPECT_EQ(b["status"], "processing");
  std::string id = b["jobId"];
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(header(r, "location"), "/v1/post/jobs/" + id);
  return id;
}

void expect_unauthorized(const http_result& r) {
  EXPECT_EQ(r.status, 401u) << r.body;
  expect_json(r);
  EXPECT_EQ(json::parse(r.body, nullptr, false),
            json::parse(R"({"statusCode":401,"message":"Unauthorized"})"))
      << r.body;
}

// Nest's error shape; `message` a string or a list of strings.
void expect_nest_error(const http_result& r, unsigned status,
                       const std::string& error) {
  EXPECT_EQ(r.status, status) << r.body;
  expect_json(r);
  auto b = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(b.is_object()) << r.body;
  EXPECT_EQ(b["statusCode"], status) << r.body;
  EXPECT_EQ(b["error"], error) << r.body;
  EXPECT_TRUE(b["message"].is_string() || b["message"].is_array()) << r.body;
}

// A 400 from validation: `message` is a non-empty list, one of which
// contains `needle`.
void expect_bad_request(const http_result& r, const std::string& needle = {}) {
  expect_nest_error(r, 400, "Bad Request");
  auto b = json::parse(r.body, nullptr, false);
  if (!b.is_object())
    return;
  const auto& m = b["message"];
  ASSERT_TRUE(m.is_array() && !m.empty()) << r.body;
  bool found = needle.empty();
  for (const auto& line : m) {
    ASSERT_TRUE(line.is_string()) << r.body;
    found = found || line.get<std::string>().find(needle) != std::string::npos;
  }
  EXPECT_TRUE(found) << "no message mentions '" << needle << "': " << r.body;
}

std::int64_t to_int(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (const std::exception&) {
    return -1;
  }
}

// ------------------------------------------------------------------ fixture

struct HttpContractTest : ::testing::Test {
  scratch_database db;
  std::string queue = unique_name("q");
  persistence::redis_client redis{test_redis()};

  // The test's own `settings`, and limits high enough that only the
  // rate-limit tests (which set their own) ever see a 429.
  env_map env(env_map settings = {}) const {
    settings.emplace("THROTTLE_LIMIT", "100000"); // unless set
    settings.merge(postd_env(db, queue, secret)); // what is not set
    return settings;
  }

  void migrate() {
    auto r = run_postd({"migrate"}, env());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string key(const std::string& suffix) const {
    return "bull:" + queue + ":" + suffix;
  }

  // How many ids the queue ever handed out (Bull's `id` counter).
  long long ids_allocated() {
    auto r = redis.command({"GET", key("id")});
    return persistence::reply_integer(r.get());
  }

  json job_data(const std::string& id) {
    auto r = redis.command({"HGET", key(id), "data"});
    return json::parse(persistence::reply_string(r.get()), nullptr, false);
  }

  // The post content job `id` carries in Redis ("" when there is none).
  std::string content_of(const std::string& id) {
    if (id.empty())
      return {};
    auto d = job_data(id);
    if (!d.is_object() || !d["postData"].is_object() ||
        !d["postData"]["content"].is_string())
      return {};
    return d["postData"]["content"];
  }

  long long list_length(const std::string& suffix) {
    auto r = redis.command({"LLEN", key(suffix)});
    return persistence::reply_integer(r.get());
  }

  // Jobs in wait, active or completed, counted atomically (a writer may
  // move one between separate reads).
  long long jobs_anywhere() {
    auto r = redis.eval("return redis.call('LLEN', KEYS[1]) + "
                        "redis.call('LLEN', KEYS[2]) + "
                        "redis.call('ZCARD', KEYS[3])",
                        {key("wait"), key("active"), key("completed")}, {});
    return persistence::reply_integer(r.get());
  }

  int rows(const std::string& where = "TRUE") {
    pqxx::connection conn{db.direct_url()};
    pqxx::work tx{conn};
    return tx.exec1("SELECT count(*) FROM \"Post\" WHERE " + where)[0]
        .as<int>();
  }

  // After a refused or broken request, a good one on a new connection is
  // still answered: the server neither crashed nor stalled.
  void expect_still_serving(int port) {
    SCOPED_TRACE("a good request afterwards");
    http_result r;
    try {
      r = raw_exchange(port, good_create("still here"));
    } catch (const std::exception& e) {
      FAIL() << "server no longer answers: " << e.what();
    }
    expect_accepted(r);
  }
};

} // namespace

// ------------------------------------------------------------------- auth

// Guards the Bearer check: every way a token can be missing, malformed,
// badly signed, expired or of another algorithm is one 401 of passport's
// shape, and nothing reaches the queue.
TEST_F(HttpContractTest, AuthRefusesAnythingButAValidHs256Token) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env());
  auto now = std::chrono::system_clock::now();
  auto good = token("alice");
  auto tampered = good;
  {
    // Same signature, another subject.
    auto dot1 = tampered.find('.');
    auto dot2 = tampered.find('.', dot1 + 1);
    tampered.replace(dot1 + 1, dot2 - dot1 - 1,
                     base64url(claims("bob").dump()));
  }
  const json none = {{"alg", "none"}, {"typ", "JWT"}};
  std::vector<std::pair<std::string, std::optional<std::string>>> refused = {
      {"no Authorization header", std::nullopt},
      {"empty Authorization header", ""},
      {"Basic scheme", "Basic YWxpY2U6c2VjcmV0"},
      {"a valid token under another scheme", "Token " + good},
      {"the token without a scheme", good},
      {"Bearer and nothing", "Bearer"},
      {"Bearer and a space", "Bearer "},
      {"not a JWT", "Bearer not-a-jwt"},
      {"three garbage segments", "Bearer a.b.c"},
      {"bad base64 in the payload", "Bearer eyJhbGciOiJIUzI1NiJ9.%%%.abc"},
      {"header only", "Bearer " + base64url(hs256.dump())},
      {"wrong key",
       "Bearer " + jwt(hs256, claims("alice"), EVP_sha256(), "another-secret")},
      {"tampered payload", "Bearer " + tampered},
      {"expired exp", "Bearer " + jwt(hs256, {{"sub", "alice"},
                                              {"iat", epoch_s(now - 1h)},
                                              {"exp", epoch_s(now - 2min)}})},
      {"alg none, no signature",
       "Bearer " + jwt(none, claims("alice"), nullptr)},
      {"alg none without the last dot", "Bearer " + base64url(none.dump()) +
                                            "." +
                                            base64url(claims("alice").dump())},
      {"alg NONE",
       "Bearer " + jwt({{"alg", "NONE"}}, claims("alice"), nullptr)},
      // The algorithm-confusion attack: a header that names another
      // algorithm over a signature the key would accept.
      {"alg none over a good HS256 signature",
       "Bearer " + jwt(none, claims("alice"))},
      {"alg HS512 over a good HS256 signature",
       "Bearer " + jwt({{"alg", "HS512"}, {"typ", "JWT"}}, claims("alice"))},
      {"HS512", "Bearer " + jwt({{"alg", "HS512"}, {"typ", "JWT"}},
                                claims("alice"), EVP_sha512())},
      {"HS384", "Bearer " + jwt({{"alg", "HS384"}, {"typ", "JWT"}},
                                claims("alice"), EVP_sha384())},
      // jsonwebtoken (passport-jwt) refuses once now >= exp, in whole
      // seconds: a token is dead during the second its exp names.
      {"exp is this very second",
       "Bearer " + jwt(hs256, {{"sub", "alice"}, {"exp", epoch_s(now)}})},
      {"exp not a number",
       "Bearer " + jwt(hs256, {{"sub", "alice"}, {"exp", "tomorrow"}})},
      {"nbf in the future",
       "Bearer " + jwt(hs256, {{"sub", "alice"},
                               {"nbf", epoch_s(now + 1h)},
                               {"exp", epoch_s(now + 2h)}})},
      {"neither sub nor id",
       "Bearer " +
           jwt(hs256, {{"name", "alice"}, {"exp", epoch_s(now + 1min)}})},
      {"empty sub", "Bearer " + jwt(hs256, claims(""))},
  };
  auto before = ids_allocated();
  for (const auto& [label, authorization] : refused) {
    SCOPED_TRACE(label);
    header_list h{{"Content-Type", "application/json"}};
    if (authorization)
      h.emplace_back("Authorization", *authorization);
    expect_unauthorized(raw_exchange(
        server.port(), create_request(R"({"content":"hello"})", h)));
  }
  EXPECT_EQ(ids_allocated(), before) << "a refused request reached the queue";

  // The author is `sub`; tokens of the old service carry `id` instead.
  auto author_of = [&](const std::string& authorization) {
    auto r = raw_exchange(
        server.port(), create_request(R"({"content":"whose?"})",
                                      {{"Authorization", authorization},
                                       {"Content-Type", "application/json"}}));
    auto id = expect_accepted(r);
    if (id.empty())
      return std::string{"<none>"};
    auto user = job_data(id)["userId"];
    return user.is_string() ? user.get<std::string>() : user.dump();
  };
  EXPECT_EQ(author_of("Bearer " + good), "alice");
  // passport-jwt matched the scheme without case, and any spaces after it.
  EXPECT_EQ(author_of("bearer " + good), "alice");
  EXPECT_EQ(author_of("Bearer   " + good), "alice");
  EXPECT_EQ(author_of("Bearer " +
                      jwt(hs256, {{"id", 42}, {"exp", epoch_s(now + 1min)}})),
            "42");
  EXPECT_EQ(author_of("Bearer " + jwt(hs256, {{"id", "legacy-7"},
                                              {"exp", epoch_s(now + 1min)}})),
            "legacy-7");
  EXPECT_EQ(author_of("Bearer " + jwt(hs256, {{"sub", "s-1"},
                                              {"id", "i-1"},
                                              {"exp", epoch_s(now + 1min)}})),
            "s-1");

  // A token accepted once (and remembered) is refused once its exp passed.
  auto exp = std::chrono::system_clock::time_point{
      std::chrono::seconds{epoch_s(std::chrono::system_clock::now()) + 2}};
  auto short_lived =
      "Bearer " + jwt(hs256, {{"sub", "brief"}, {"exp", epoch_s(exp)}});
  EXPECT_EQ(author_of(short_lived), "brief");
  std::this_thread::sleep_until(exp + 100ms);
  expect_unauthorized(raw_exchange(
      server.port(), create_request(R"({"content":"late"})",
                                    {{"Authorization", short_lived},
                                     {"Content-Type", "application/json"}})));
}

// -------------------------------------------------------------- validation

// Guards the DTO check (whitelist + forbidNonWhitelisted, 1..MAX_CONTENT_CHARS
// characters of valid UTF-8, no NUL): each bad body is a 400 in Nest's shape
// and queues nothing; the boundary counts characters, not bytes.
TEST_F(HttpContractTest, ValidationRefusesBadBodiesInNestShape) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env({{"MAX_CONTENT_CHARS", "10"}}));
  auto repeat = [](const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i)
      out += s;
    return out;
  };
  const std::string e_acute = "\xC3\xA9";        // 2 bytes
  const std::string euro = "\xE2\x82\xAC";       // 3 bytes
  const std::string rocket = "\xF0\x9F\x9A\x80"; // 4 bytes
  struct bad_body {
    std::string label;
    std::string body;
    std::string needle; // a message must mention it
  };
  std::vector<bad_body> bad = {
      {"empty content", R"({"content":""})", "empty"},
      {"missing content", R"({})", "content"},
      {"content null", R"({"content":null})", "content"},
      {"content a number", R"({"content":42})", "string"},
      {"content a boolean", R"({"content":true})", "string"},
      {"content an array", R"({"content":["a"]})", "string"},
      {"content an object", R"({"content":{"a":"b"}})", "string"},
      {"unknown field", R"({"content":"ok","title":"x"})", "title"},
      {"unknown field only", R"({"title":"x"})", "title"},
      {"an array", R"([{"content":"ok"}])", ""},
      {"an empty array", "[]", ""},
      {"a string", R"("content")", ""},
      {"a number", "42", ""},
      {"null", "null", ""},
      {"true", "true", ""},
      {"truncated JSON", R"({"content":"ok")", ""},
      {"unquoted key", R"({content:"ok"})", ""},
      {"trailing comma", R"({"content":"ok",})", ""},
      {"trailing garbage", R"({"content":"ok"} x)", ""},
      {"two documents", R"({"content":"a"}{"content":"b"})", ""},
      {"single quotes", R"({'content':'ok'})", ""},
      {"empty body", "", ""},
      {"only whitespace", "  \r\n ", ""},
      {"invalid UTF-8 (C3 28)", "{\"content\":\"\xC3\x28\"}", ""},
      {"invalid UTF-8 (FF)", "{\"content\":\"a\xFF\"}", ""},
      {"overlong encoding", "{\"content\":\"\xC0\xAF\"}", ""},
      {"UTF-8 encoded surrogate", "{\"content\":\"\xED\xA0\x80\"}", ""},
      {"truncated sequence", "{\"content\":\"\xF0\x9F\x9A\"}", ""},
      {"beyond U+10FFFF", "{\"content\":\"\xF4\x90\x80\x80\"}", ""},
      {"lone surrogate escape", R"({"content":"\ud800"})", ""},
      {"invalid UTF-8 in a key", "{\"\xFF\":1,\"content\":\"ok\"}", ""},
      {"escaped NUL", R"({"content":"a\u0000b"})", "NUL"},
      {"only NUL", R"({"content":"\u0000"})", "NUL"},
      {"11 two-byte characters", json{{"content", repeat(e_acute, 11)}}.dump(),
       "10"},
      {"11 four-byte characters", json{{"content", repeat(rocket, 11)}}.dump(),
       "10"},
      {"11 ASCII characters", R"({"content":"abcdefghijk"})", "10"},
  };
  auto before = ids_allocated();
  for (const auto& b : bad) {
    SCOPED_TRACE(b.label);
    expect_bad_request(
        raw_exchange(
            server.port(),
            create_request(b.body, {{"Authorization", bearer("alice")},
                                    {"Content-Type", "application/json"}})),
        b.needle);
  }
  EXPECT_EQ(ids_allocated(), before) << "an invalid body reached the queue";

  // Exactly MAX_CONTENT_CHARS characters pass, however many bytes they take,
  // and arrive in Redis unchanged (escapes decoded).
  struct good_body {
    std::string label;
    std::string body;
    std::string content;
  };
  std::vector<good_body> good = {
      {"10 ASCII", R"({"content":"abcdefghij"})", "abcdefghij"},
      {"10 two-byte", json{{"content", repeat(e_acute, 10)}}.dump(),
       repeat(e_acute, 10)},
      {"10 three-byte", json{{"content", repeat(euro, 10)}}.dump(),
       repeat(euro, 10)},
      {"10 four-byte", json{{"content", repeat(rocket, 10)}}.dump(),
       repeat(rocket, 10)},
      {"10 escaped surrogate pairs",
       R"({"content":")" + repeat(R"(\ud83d\ude80)", 10) + R"("})",
       repeat(rocket, 10)},
      {"one character", R"({"content":"x"})", "x"},
      {"whitespace around the document", " \r\n{ \"content\" : \"ok\" }\n ",
       "ok"},
  };
  for (const auto& g : good) {
    SCOPED_TRACE(g.label);
    auto id = expect_accepted(raw_exchange(
        server.port(),
        create_request(g.body, {{"Authorization", bearer("alice")},
                                {"Content-Type", "application/json"}})));
    EXPECT_EQ(content_of(id), g.content);
  }
}

// ------------------------------------------- limits and malformed requests

// Guards the connection-level refusals (413, 415, 431, 404, 405, 400 for
// bytes that are not HTTP): each comes as Nest's JSON error, and the server
// goes on answering good requests on new connections.
TEST_F(HttpContractTest, LimitsAndMalformedRequestsNeverStopTheServer) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env({{"MAX_BODY_BYTES", "256"}}));
  const int port = server.port();
  const header_list auth_json{{"Authorization", bearer("alice")},
                              {"Content-Type", "application/json"}};

  // The largest body allowed passes; one byte more is a 413.
  auto body_of_size = [](std::size_t n) {
    auto overhead = std::string(R"({"content":""})").size();
    return json{{"content", std::string(n - overhead, 'x')}}.dump();
  };
  {
    SCOPED_TRACE("a body of exactly MAX_BODY_BYTES");
    ASSERT_EQ(body_of_size(256).size(), 256u);
    expect_accepted(
        raw_exchange(port, create_request(body_of_size(256), auth_json)));
  }
  {
    SCOPED_TRACE("a body one byte over MAX_BODY_BYTES");
    expect_nest_error(
        raw_exchange(port, create_request(body_of_size(257), auth_json)), 413,
        "Payload Too Large");
    expect_still_serving(port);
  }
  {
    // Refused on the header alone: the server must not wait for 10 MB.
    SCOPED_TRACE("a Content-Length of 10 MB, body never sent");
    raw_client c{port};
    c.send(
        raw_request("POST", "/v1/post/create", auth_json, {}, 10 * kib * kib));
    expect_nest_error(c.read_response(), 413, "Payload Too Large");
    expect_still_serving(port);
  }
  {
    // Chunked encoding is no way around the limit.
    SCOPED_TRACE("a chunked body over MAX_BODY_BYTES");
    auto body = body_of_size(400);
    auto head = raw_request("POST", "/v1/post/create", auth_json);
    head.insert(head.size() - 2, "Transfer-Encoding: chunked\r\n");
    std::string chunks;
    for (std::size_t i = 0; i < body.size(); i += 100) {
      auto part = body.substr(i, 100);
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", part.size());
      chunks += size + part + "\r\n";
    }
    chunks += "0\r\n\r\n";
    expect_nest_error(raw_exchange(port, head + chunks), 413,
                      "Payload Too Large");
    expect_still_serving(port);
  }

  {
    SCOPED_TRACE("a chunked body within MAX_BODY_BYTES");
    auto head = raw_request("POST", "/v1/post/create", auth_json);
    head.insert(head.size() - 2, "Transfer-Encoding: chunked\r\n");
    auto id = expect_accepted(raw_exchange(port, head + "6\r\n{\"cont\r\n" +
                                                     "a\r\nent\":\"ok\"}\r\n" +
                                                     "0\r\n\r\n"));
    EXPECT_EQ(content_of(id), "ok");
  }
  {
    // RFC 9112 §3.2.2: a server MUST accept the absolute form; Express
    // routed it on its path.
    SCOPED_TRACE("an absolute-form request target");
    expect_accepted(raw_exchange(
        port, raw_request("POST", "http://127.0.0.1/v1/post/create", auth_json,
                          R"({"content":"ok"})")));
  }
  {
    SCOPED_TRACE("a query string on the route");
    expect_accepted(
        raw_exchange(port, raw_request("POST", "/v1/post/create?source=app",
                                       auth_json, R"({"content":"ok"})")));
  }

  // Only JSON bodies (the token is good, so 415 is the first refusal).
  for (const auto& [label, type] :
       std::vector<std::pair<std::string, std::optional<std::string>>>{
           {"text/plain", "text/plain"},
           {"no Content-Type", std::nullopt},
           {"a form", "application/x-www-form-urlencoded"},
           {"application/jsonp", "application/jsonp"}}) {
    SCOPED_TRACE(label);
    header_list h{{"Authorization", bearer("alice")}};
    if (type)
      h.emplace_back("Content-Type", *type);
    expect_nest_error(
        raw_exchange(port, create_request(R"({"content":"ok"})", h)), 415,
        "Unsupported Media Type");
    expect_still_serving(port);
  }
  {
    SCOPED_TRACE("Content-Type with parameters and another case");
    expect_accepted(raw_exchange(
        port,
        create_request(R"({"content":"ok"})",
                       {{"Authorization", bearer("alice")},
                        {"Content-Type", "Application/JSON; charset=UTF-8"}})));
  }

  // The header block: 7 KiB passes, 9 KiB is a 431.
  {
    SCOPED_TRACE("a 7 KiB header block");
    expect_accepted(raw_exchange(
        port, good_create("big headers", "alice",
                          {{"X-Padding", std::string(7 * kib, 'p')}})));
  }
  {
    SCOPED_TRACE("a 9 KiB header block");
    expect_nest_error(
        raw_exchange(port,
                     good_create("huge headers", "alice",
                                 {{"X-Padding", std::string(9 * kib, 'p')}})),
        431, "Request Header Fields Too Large");
    expect_still_serving(port);
  }
  {
    SCOPED_TRACE("a 9 KiB request target");
    expect_nest_error(
        raw_exchange(port, raw_request("POST",
                                       "/v1/post/create?pad=" +
                                           std::string(9 * kib, 'p'),
                                       auth_json, R"({"content":"ok"})")),
        431, "Request Header Fields Too Large");
    expect_still_serving(port);
  }
  {
    SCOPED_TRACE("many small headers over 8 KiB");
    header_list many;
    for (int i = 0; i < 400; ++i)
      many.emplace_back("X-H" + std::to_string(i), std::string(20, 'v'));
    expect_nest_error(raw_exchange(port, good_create("many", "alice", many)),
                      431, "Request Header Fields Too Large");
    expect_still_serving(port);
  }

  // Routing: Nest's 404, and 405 with Allow on the create route.
  for (const auto& [method, target] :
       std::vector<std::pair<std::string, std::string>>{
           {"GET", "/"},
           {"GET", "/v1/nope"},
           {"POST", "/v1/post/create/extra"},
           {"POST", "/v1/posts/create"}}) {
    SCOPED_TRACE(method + " " + target);
    auto r = raw_exchange(
        port, raw_request(method, target, auth_json, R"({"content":"ok"})"));
    expect_nest_error(r, 404, "Not Found");
    EXPECT_EQ(json::parse(r.body, nullptr, false)["message"],
              "Cannot " + method + " " + target);
  }
  for (const auto* method : {"GET", "PUT", "DELETE", "PATCH"}) {
    SCOPED_TRACE(std::string(method) + " /v1/post/create");
    auto r = raw_exchange(
        port,
        raw_request(method, "/v1/post/create", auth_json,
                    std::string(method) == "GET" ? "" : R"({"content":"ok"})"));
    expect_nest_error(r, 405, "Method Not Allowed");
    EXPECT_EQ(header(r, "allow"), "POST");
  }
  {
    // /v1/post/createx names a post (GET /v1/post/:id): its methods are GETs.
    auto r = raw_exchange(port, raw_request("POST", "/v1/post/createx",
                                            auth_json, R"({"content":"ok"})"));
    expect_nest_error(r, 405, "Method Not Allowed");
    EXPECT_EQ(header(r, "allow"), "GET, HEAD");
  }
  expect_still_serving(port);

  // Bytes that are not (valid) HTTP: a 400, the connection closed, the
  // server unharmed.
  std::vector<std::pair<std::string, std::string>> garbage = {
      {"binary noise", std::string("\x00\x01\x02\x03garbage\r\n\r\n", 15)},
      {"a TLS ClientHello",
       std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)},
      {"a request line without version", "GET /health\r\n\r\n"},
      {"a bad version", "GET /health HTTP/x.y\r\nHost: a\r\n\r\n"},
      {"a field without colon", "GET /health HTTP/1.1\r\nHost a\r\n\r\n"},
      {"a bad Content-Length", "POST /v1/post/create HTTP/1.1\r\nHost: "
                               "a\r\nContent-Length: abc\r\n\r\n"},
      {"two different Content-Lengths",
       "POST /v1/post/create HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
       "Content-Length: 3\r\n\r\n{}}"},
      {"a bad chunk size",
       "POST /v1/post/create HTTP/1.1\r\nHost: a\r\nContent-Type: "
       "application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n"
       "0\r\n\r\n"},
      // RFC 9112 §6.3: a request whose last transfer coding is not chunked
      // has no determinable length: 400 and close. Read as bodiless, its
      // body would be taken for a second request (request smuggling).
      {"Transfer-Encoding without chunked",
       "POST /v1/post/create HTTP/1.1\r\nHost: a\r\nContent-Type: "
       "application/json\r\nTransfer-Encoding: gzip\r\n\r\n"
       "GET /v1/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"Content-Length and Transfer-Encoding together",
       "POST /v1/post/create HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
       "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"},
      {"whitespace between field name and colon",
       "GET /health HTTP/1.1\r\nHost : a\r\n\r\n"},
      {"a NUL in a field value",
       std::string("GET /health HTTP/1.1\r\nHost: a\r\nX-A: a") + '\0' +
           "b\r\n\r\n"},
  };
  for (const auto& [label, bytes] : garbage) {
    SCOPED_TRACE(label);
    raw_client c{port};
    c.send(bytes);
    if (auto r = response_or_close(c)) {
      expect_nest_error(*r, 400, "Bad Request");
      EXPECT_TRUE(c.closed_by_peer(2s)) << "connection left open";
    } else {
      ADD_FAILURE() << "closed without a 400";
    }
    expect_still_serving(port);
  }
  {
    // No line end ever comes, then the client gives up sending: the server
    // must end the connection at once (a 400 first is fine), not wait for
    // its read timeout.
    SCOPED_TRACE("noise without a line end, then end of stream");
    raw_client c{port};
    c.send(std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11));
    c.shutdown_send();
    if (auto r = response_or_close(c)) {
      expect_nest_error(*r, 400, "Bad Request");
      EXPECT_TRUE(c.closed_by_peer(2s));
    }
    expect_still_serving(port);
  }
  {
    SCOPED_TRACE("a connection closed mid-request");
    {
      raw_client c{port};
      c.send(good_create("never finished").substr(0, 60));
    }
    {
      raw_client c{port};
      auto req = good_create("body cut short");
      c.send(req.substr(0, req.size() - 5));
    }
    expect_still_serving(port);
  }
}

// -------------------------------------------------- keep-alive, pipelining

// Guards connection reuse: many requests, errors included, on one
// connection; a request trickling in a few bytes at a time; and
// `Connection: close` honoured.
TEST_F(HttpContractTest, KeepAliveServesManyRequestsOnOneConnection) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env());
  raw_client c{server.port()};
  std::int64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    c.send(good_create("keep-alive " + std::to_string(i)));
    auto r = c.read_response();
    auto id = to_int(expect_accepted(r));
    EXPECT_GT(id, last);
    last = id;
    EXPECT_NE(header(r, "connection"), "close");
  }
  // Refusals do not cost the client its connection.
  c.send(create_request(R"({"content":"ok"})",
                        {{"Content-Type", "application/json"}}));
  expect_unauthorized(c.read_response());
  c.send(create_request(R"({"content":""})",
                        {{"Authorization", bearer("alice")},
                         {"Content-Type", "application/json"}}));
  expect_bad_request(c.read_response());
  c.send(raw_request("GET", "/nowhere"));
  expect_nest_error(c.read_response(), 404, "Not Found");
  c.send(raw_request("GET", "/health"));
  EXPECT_EQ(c.read_response().status, 200u);
  {
    SCOPED_TRACE("sent 5 bytes at a time");
    c.send_slowly(good_create("slowly"), 5, 5ms);
    auto id = expect_accepted(c.read_response());
    EXPECT_EQ(content_of(id), "slowly");
  }
  {
    SCOPED_TRACE("Connection: close");
    c.send(good_create("last one", "alice", {{"Connection", "close"}}));
    auto r = c.read_response();
    expect_accepted(r);
    EXPECT_EQ(header(r, "connection"), "close");
    EXPECT_TRUE(c.closed_by_peer(2s));
  }
  {
    SCOPED_TRACE("HTTP/1.0 without keep-alive");
    raw_client old{server.port()};
    auto req = good_create("from 1997");
    req.replace(req.find("HTTP/1.1"), 8, "HTTP/1.0");
    old.send(req);
    auto r = old.read_response();
    expect_accepted(r);
    EXPECT_TRUE(old.closed_by_peer(2s));
  }
  {
    // Clients that send the header block alone with Expect: 100-continue
    // (libcurl for large bodies, .NET, Java) wait for a 100 before the body.
    // Node answered it at once (RFC 9110 §10.1.1); a silent server costs
    // each such post the client's whole expect timeout (1 s in curl).
    SCOPED_TRACE("Expect: 100-continue");
    raw_client cont{server.port(), 900ms};
    auto req = good_create("continued", "alice", {{"Expect", "100-continue"}});
    auto split = req.find("\r\n\r\n") + 4;
    cont.send(req.substr(0, split));
    if (auto interim = response_or_close(cont, "no 100 Continue: ")) {
      EXPECT_EQ(interim->status, 100u) << interim->body;
    }
    cont.send(req.substr(split));
    expect_accepted(cont.read_response());
  }
}

// Guards the ordering of pipelined answers: requests sent in one write are
// answered in the order sent, even when a later one (a 401, /health) is
// answered synchronously and an earlier one waits on Redis.
TEST_F(HttpContractTest, PipelinedRequestsAreAnsweredInOrder) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env());
  raw_client c{server.port()};
  std::string batch;
  batch += good_create("pipelined 0");
  batch += good_create("pipelined 1");
  batch += create_request(R"({"content":"no token"})",
                          {{"Content-Type", "application/json"}});
  batch += raw_request("GET", "/health");
  batch += good_create("pipelined 4");
  batch += good_create("pipelined 5");
  c.send(batch);
  std::vector<http_result> answers;
  for (int i = 0; i < 6; ++i)
    answers.push_back(c.read_response());
  std::int64_t last = 0;
  for (int i : {0, 1, 4, 5}) {
    SCOPED_TRACE("answer " + std::to_string(i));
    auto id = expect_accepted(answers[i]);
    EXPECT_GT(to_int(id), last) << "answers out of order";
    last = to_int(id);
    EXPECT_EQ(content_of(id), "pipelined " + std::to_string(i));
  }
  expect_unauthorized(answers[2]);
  EXPECT_EQ(answers[3].status, 200u) << answers[3].body;
  EXPECT_NE(answers[3].body.find("\"status\":\"ok\""), std::string::npos)
      << answers[3].body;

  // A pipeline split mid-request across writes, 20 deep.
  std::string many;
  for (int i = 0; i < 20; ++i)
    many += good_create("deep " + std::to_string(i));
  c.send(many.substr(0, many.size() / 3 + 7));
  std::this_thread::sleep_for(20ms);
  c.send(many.substr(many.size() / 3 + 7));
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE("deep " + std::to_string(i));
    auto id = expect_accepted(c.read_response());
    EXPECT_GT(to_int(id), last);
    last = to_int(id);
    EXPECT_EQ(content_of(id), "deep " + std::to_string(i));
  }
}

// ------------------------------------------------------------ rate limiting

// Guards @nestjs/throttler's behaviour: the headers on allowed answers, the
// 429 and its Retry-After, the block of one window, the reset after it, a
// limit per route, and /health* never throttled.
TEST_F(HttpContractTest, RateLimitFollowsNestThrottler) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server,
               env({{"THROTTLE_LIMIT", "3"}, {"THROTTLE_TTL", "2000"}}));
  // The create path warmed up by another client (127.0.0.2 has a limit of
  // its own): its first create connects and loads scripts. The window is
  // 2 s: under TSan four pipelined creates take ~600 ms.
  for (int i = 0; i < 2; ++i) {
    auto warm = http_call(server.port(), "POST", "/v1/post/create",
                          json{{"content", "warm-up"}}.dump(),
                          {{"Authorization", bearer("bob")},
                           {"Content-Type", "application/json"}},
                          10s, "127.0.0.2");
    ASSERT_EQ(warm.status, 202u) << warm.body;
  }
  raw_client c{server.port()};
  // One write, so the four land well within one window.
  auto burst_start = std::chrono::steady_clock::now();
  c.send(good_create("r1") + good_create("r2") + good_create("r3") +
         good_create("r4"));
  std::vector<http_result> r;
  for (int i = 0; i < 4; ++i)
    r.push_back(c.read_response());
  auto blocked_at = std::chrono::steady_clock::now();
  ASSERT_LT(blocked_at - burst_start, 1500ms)
      << "the burst took too long for a 2 s window to mean anything";
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("allowed " + std::to_string(i + 1));
    expect_accepted(r[i]);
    EXPECT_EQ(header(r[i], "x-ratelimit-limit"), "3");
    EXPECT_EQ(header(r[i], "x-ratelimit-remaining"), std::to_string(2 - i));
    EXPECT_EQ(header(r[i], "x-ratelimit-reset"), "2");
  }
  auto expect_throttled = [](const http_result& t) {
    EXPECT_EQ(t.status, 429u) << t.body;
    expect_json(t);
    EXPECT_EQ(
        json::parse(t.body, nullptr, false),
        json::parse(R"({"statusCode":429,)"
                    R"("message":"ThrottlerException: Too Many Requests"})"))
        << t.body;
    auto retry = to_int(header(t, "retry-after"));
    EXPECT_GE(retry, 1) << header(t, "retry-after");
    EXPECT_LE(retry, 2) << header(t, "retry-after");
  };
  {
    SCOPED_TRACE("the fourth");
    expect_throttled(r[3]);
  }
  auto before = ids_allocated();
  // /health* are never throttled, not even while the client is blocked.
  for (int i = 0; i < 10; ++i)
    for (const auto* target : {"/health", "/health/queue"}) {
      SCOPED_TRACE(target);
      c.send(raw_request("GET", target));
      auto h = c.read_response();
      EXPECT_EQ(h.status, 200u) << h.body;
      EXPECT_EQ(header(h, "x-ratelimit-limit"), "");
    }
  // The limit is per route: another /v1 route has its own.
  c.send(raw_request("GET", "/v1/post/jobs/1",
                     {{"Authorization", bearer("alice")}}));
  auto other = c.read_response();
  EXPECT_NE(other.status, 429u) << other.body;
  EXPECT_EQ(header(other, "x-ratelimit-remaining"), "2");
  // Still blocked; the guard runs first (Nest's global ThrottlerGuard, before
  // auth and validation), so whatever the client sends is a 429.
  std::this_thread::sleep_until(blocked_at + 400ms);
  {
    SCOPED_TRACE("during the block");
    c.send(good_create("blocked"));
    expect_throttled(c.read_response());
    c.send(create_request(R"({"content":"x"})",
                          {{"Content-Type", "application/json"}}));
    expect_throttled(c.read_response());
    c.send(create_request(
        R"({"content":"x"})",
        {{"Authorization", bearer("alice")}, {"Content-Type", "text/plain"}}));
    expect_throttled(c.read_response());
  }
  EXPECT_EQ(ids_allocated(), before) << "a throttled request was queued";
  // One window after the blocking hit, the client starts afresh.
  std::this_thread::sleep_until(blocked_at + 2300ms);
  {
    SCOPED_TRACE("after the window");
    c.send(good_create("allowed again"));
    auto again = c.read_response();
    expect_accepted(again);
    EXPECT_EQ(header(again, "x-ratelimit-remaining"), "2");
  }
}

// Guards TRUST_PROXY: trusted, the first X-Forwarded-For address is the
// client (one limit each); untrusted, the header is ignored and every client
// behind the proxy shares the peer's limit.
TEST_F(HttpContractTest, TrustProxyDecidesWhoIsTheClient) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  auto e = env();
  e["THROTTLE_LIMIT"] = "2";
  e["THROTTLE_TTL"] = "60000";
  e["TRUST_PROXY"] = "true";
  START_SERVER(trusting, e);
  e["TRUST_PROXY"] = "false";
  START_SERVER(distrusting, e);
  auto from = [](int port, const std::optional<std::string>& xff) {
    header_list h;
    if (xff)
      h.emplace_back("X-Forwarded-For", *xff);
    return raw_exchange(port, good_create("via proxy", "alice", h));
  };
  {
    SCOPED_TRACE("TRUST_PROXY=true");
    int p = trusting.port();
    expect_accepted(from(p, "203.0.113.1"));
    expect_accepted(from(p, "203.0.113.1"));
    EXPECT_EQ(from(p, "203.0.113.1").status, 429u);
    auto second = from(p, "203.0.113.2, 203.0.113.1");
    expect_accepted(second);
    EXPECT_EQ(header(second, "x-ratelimit-remaining"), "1");
    EXPECT_EQ(from(p, " 203.0.113.1 , 10.0.0.1").status, 429u)
        << "the first address is the client";
    expect_accepted(from(p, std::nullopt)); // the peer, 127.0.0.1
  }
  {
    SCOPED_TRACE("TRUST_PROXY=false");
    int p = distrusting.port();
    expect_accepted(from(p, "203.0.113.1"));
    expect_accepted(from(p, "203.0.113.2"));
    EXPECT_EQ(from(p, "203.0.113.3").status, 429u) << "one limit for all";
    EXPECT_EQ(from(p, std::nullopt).status, 429u);
  }
}

// ---------------------------------------------------------- idempotency

// Guards Idempotency-Key: a repeat (same author, same key) gets the first
// job's id and creates nothing, in Redis or in "Post"; the key is scoped to
// the author; a malformed key is a 400 that queues nothing.
TEST_F(HttpContractTest, IdempotencyKeyReturnsTheFirstJob) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env());
  const int port = server.port();
  auto create_with_key = [&](const std::string& sub, const std::string& key,
                             const std::string& content = "once") {
    return raw_exchange(port,
                        good_create(content, sub, {{"Idempotency-Key", key}}));
  };
  auto first = expect_accepted(create_with_key("alice", "order-42"));
  auto again = expect_accepted(create_with_key("alice", "order-42", "twice"));
  EXPECT_EQ(again, first);
  EXPECT_EQ(ids_allocated(), 1) << "the repeat allocated a job id";
  EXPECT_EQ(jobs_anywhere(), 1);
  EXPECT_EQ(content_of(first), "once");

  auto bobs = expect_accepted(create_with_key("bob", "order-42"));
  EXPECT_NE(bobs, first) << "another author's key is another job";
  auto other_key = expect_accepted(create_with_key("alice", "order-43"));
  EXPECT_NE(other_key, first);
  expect_accepted(create_with_key("alice", std::string(255, 'k')));
  EXPECT_EQ(ids_allocated(), 4);

  auto before = ids_allocated();
  for (const auto& [label, bad_key] :
       std::vector<std::pair<std::string, std::string>>{
           {"256 characters", std::string(256, 'k')},
           {"a tab", "order\t42"},
           {"empty", ""},
           {"non-ASCII", "ordre-\xC3\xA9"}}) {
    SCOPED_TRACE(label);
    expect_bad_request(create_with_key("alice", bad_key), "Idempotency-Key");
  }
  {
    // Beast may refuse a raw control byte itself; either way a 400.
    SCOPED_TRACE("a control character");
    auto r = create_with_key("alice", std::string("order\x01"
                                                  "42"));
    expect_nest_error(r, 400, "Bad Request");
  }
  EXPECT_EQ(ids_allocated(), before) << "a bad key reached the queue";

  // Once the writers ran: one row per job, and a repeat still finds the
  // first job (the key lives 24 h, beyond the job's completion).
  ASSERT_TRUE(eventually([&] { return rows() == 4; })) << server.output();
  EXPECT_EQ(rows("\"jobId\" = '" + first + "'"), 1);
  EXPECT_EQ(expect_accepted(create_with_key("alice", "order-42")), first);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(rows(), 4);
  EXPECT_EQ(ids_allocated(), 4);
}

// --------------------------------------------------------- load shedding

// Guards QUEUE_MAX_WAITING: while `wait` holds that many jobs, create
// answers 503 with Retry-After and writes nothing for it. The writers cannot
// drain the queue: their DATABASE_URL names a database that does not exist
// (they then never take a job, so `wait` only grows).
TEST_F(HttpContractTest, QueueAboveMaxWaitingAnswers503) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  server_process server{env({{"DATABASE_URL", db.pgbouncer_url() + "_absent"},
                             {"QUEUE_MAX_WAITING", "3"}})};
  ASSERT_TRUE(eventually(
      [&] {
        try {
          return raw_exchange(server.port(),
                              raw_request("GET", "/health/queue"), 1s)
                     .status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      20s))
      << server.output();
  // Jobs a producer left behind count as waiting.
  redis.command({"LPUSH", key("wait"), "left-behind-1"});
  expect_accepted(raw_exchange(server.port(), good_create("a")));
  expect_accepted(raw_exchange(server.port(), good_create("b")));
  EXPECT_EQ(list_length("wait"), 3);
  auto counter = ids_allocated();
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("over the bound " + std::to_string(i));
    auto r = raw_exchange(server.port(), good_create("too many"));
    expect_nest_error(r, 503, "Service Unavailable");
    EXPECT_GE(to_int(header(r, "retry-after")), 1) << header(r, "retry-after");
    EXPECT_EQ(header(r, "location"), "");
  }
  EXPECT_EQ(ids_allocated(), counter) << "a refused job took an id";
  EXPECT_EQ(
      persistence::reply_integer(
          redis.command({"EXISTS", key(std::to_string(counter + 1))}).get()),
      0);
  // Nothing drained it meanwhile: the bound, not the writers, refused.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(list_length("wait"), 3) << server.output();
  EXPECT_EQ(list_length("active"), 0);
  // Room again once a job leaves `wait`.
  redis.command({"LREM", key("wait"), "0", "left-behind-1"});
  expect_accepted(raw_exchange(server.port(), good_create("room again")));
}

// Guards the answer while Redis is unreachable: create is a 503 with
// Retry-After (never a 202, never a hang), and /health reports the queue
// down with a 503.
TEST_F(HttpContractTest, RedisUnreachableAnswers503AndHealthSaysSo) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  // Nothing listens on that port.
  server_process server{env({{"REDIS_PORT", std::to_string(free_port())}})};
  std::optional<http_result> health;
  ASSERT_TRUE(eventually(
      [&] {
        try {
          health =
              raw_exchange(server.port(), raw_request("GET", "/health"), 1s);
          auto b = json::parse(health->body, nullptr, false);
          // Wait for the monitor's first verdict on the queue.
          return b.is_object() && b["error"].is_object() &&
                 b["error"].contains("queue:" + queue) &&
                 b["error"]["queue:" + queue].value("message", "") !=
                     "not checked yet";
        } catch (const std::exception&) {
          return false;
        }
      },
      20s))
      << server.output();
  EXPECT_EQ(health->status, 503u);
  expect_json(*health);
  EXPECT_EQ(header(*health, "cache-control"),
            "no-cache, no-store, must-revalidate");
  auto h = json::parse(health->body);
  EXPECT_EQ(h["status"], "error");
  EXPECT_EQ(h["error"]["queue:" + queue]["status"], "down");
  EXPECT_TRUE(h["error"]["queue:" + queue]["message"].is_string());
  EXPECT_FALSE(h["info"].contains("queue:" + queue));
  // Not ready without its queue, yet alive (a restart would not help).
  EXPECT_EQ(
      raw_exchange(server.port(), raw_request("GET", "/health/ready")).status,
      503u);
  EXPECT_EQ(
      raw_exchange(server.port(), raw_request("GET", "/health/live")).status,
      200u);

  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("create " + std::to_string(i));
    auto start = std::chrono::steady_clock::now();
    auto r = raw_exchange(server.port(), good_create("into the void"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
    expect_nest_error(r, 503, "Service Unavailable");
    EXPECT_GE(to_int(header(r, "retry-after")), 1) << header(r, "retry-after");
  }
  auto q = raw_exchange(server.port(), raw_request("GET", "/health/queue"));
  EXPECT_EQ(q.status, 503u) << q.body;
  expect_json(q);
}

// ------------------------------------------------------------ read timeout

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

milliseconds since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

// Sends `bytes` one at a time with `pause` between them, watching for the
// server to end the connection; returns how long after `start` it did, or
// nullopt when it was still open after `limit` (or all bytes were sent).
std::optional<milliseconds>
trickle_until_closed(raw_client& c, std::string_view bytes, milliseconds pause,
                     milliseconds limit, steady_clock::time_point start) {
  for (char byte : bytes) {
    if (since(start) > limit)
      return std::nullopt;
    try {
      c.send(std::string_view{&byte, 1});
    } catch (const std::runtime_error&) {
      return since(start); // reset by the server
    }
    if (c.closed_by_peer(pause))
      return since(start);
  }
  return std::nullopt;
}

// A create whose header block is complete and whose body is 100 bytes of
// valid JSON, so only its slowness can make the server refuse it.
std::string create_with_100_byte_body() {
  std::string body = json{{"content", std::string(86, 'x')}}.dump();
  EXPECT_EQ(body.size(), 100u);
  return create_request(body, {{"Authorization", bearer("alice")},
                               {"Content-Type", "application/json"}});
}

} // namespace

// Guards HTTP_READ_TIMEOUT_MS as the keep-alive idle limit: an idle
// connection stays usable well inside the limit (the deadline is renewed
// after each answer) and is closed by the server once it has passed.
TEST_F(HttpContractTest, ReadTimeoutClosesIdleKeepAliveConnections) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env({{"HTTP_READ_TIMEOUT_MS", "1000"}}));
  raw_client c{server.port()};
  c.send(raw_request("GET", "/health/queue"));
  EXPECT_EQ(c.read_response().status, 200u);
  std::this_thread::sleep_for(600ms);
  c.send(raw_request("GET", "/health/queue"));
  EXPECT_EQ(c.read_response().status, 200u) << "closed after 0.6 s idle";
  auto idle = steady_clock::now();
  EXPECT_TRUE(c.closed_by_peer(2500ms)) << "idle connection left open";
  EXPECT_GE(since(idle), 800ms) << "closed well before the timeout";
  EXPECT_LE(since(idle), 2000ms);
  expect_still_serving(server.port());
}

// Guards the slow-header defence: a header block trickling in a byte every
// 100 ms, never complete, is cut off at the read timeout.
TEST_F(HttpContractTest, ReadTimeoutCutsOffASlowHeader) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env({{"HTTP_READ_TIMEOUT_MS", "500"}}));
  auto start = steady_clock::now();
  raw_client c{server.port()};
  std::string never_ends =
      "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(200, 'X');
  auto closed = trickle_until_closed(c, never_ends, 100ms, 1500ms, start);
  ASSERT_TRUE(closed) << "a slow header held the connection past 3x timeout";
  EXPECT_GE(*closed, 400ms) << "closed before the timeout";
  expect_still_serving(server.port());
}

// Guards the whole-request deadline: after a header block sent slowly over
// about 1.2 s, a body trickling in a byte every 100 ms is cut off one
// timeout (1.5 s) after the request began, not one timeout after the header
// (2.7 s), and nothing of it reaches the queue.
TEST_F(HttpContractTest, ReadTimeoutCutsOffASlowBody) {
  ASSERT_NO_FATAL_FAILURE(migrate());
  START_SERVER(server, env({{"HTTP_READ_TIMEOUT_MS", "1500"}}));
  auto req = create_with_100_byte_body();
  auto split = req.find("\r\n\r\n") + 4;
  auto start = steady_clock::now();
  raw_client c{server.port()};
  c.send_slowly(req.substr(0, split), (split + 12) / 13, 100ms);
  auto closed =
      trickle_until_closed(c, req.substr(split), 100ms, 3000ms, start);
  ASSERT_TRUE(closed) << "a slow body held the connection past 2x timeout";
  EXPECT_GE(*closed, 1400ms) << "closed before the timeout";
  EXPECT_LT(*closed, 2100ms) << "the deadline restarted for the body";
  EXPECT_EQ(ids_allocated(), 0);
  EXPECT_EQ(jobs_anywhere(), 0);
  expect_still_serving(server.port());
}

// Guards the setting's validation: not a number or out of 100..3600000 is
// exit code 2 with one line naming it; --help lists its flag.
TEST_F(HttpContractTest, ReadTimeoutSettingIsValidated) {
  for (const auto* bad : {"abc", "50", "3600001", ""}) {
    SCOPED_TRACE(std::string("HTTP_READ_TIMEOUT_MS=") + bad);
    // An accepted value would serve.
    auto r = run_postd({"serve"}, env({{"HTTP_READ_TIMEOUT_MS", bad}}), 3s);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find("HTTP_READ_TIMEOUT_MS"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto flag = run_postd({"serve", "--http-read-timeout-ms", "50"}, env(), 3s);
  EXPECT_EQ(flag.exit_code, 2) << flag.out << flag.err;
  EXPECT_NE(flag.err.find("HTTP_READ_TIMEOUT_MS"), std::string::npos);
  auto help = run_postd({"--help"}, {}, 3s);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--http-read-timeout-ms"), std::string::npos)
      << help.out;
}
