// The fault API's handler (http/admin): the token, the bodies it takes and
// refuses, and the board it leaves.

#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/admin.hpp"

using namespace postd;
using namespace std::chrono_literals;
using core::fault;

namespace {

constexpr const char* token = "0123456789abcdef-admin";

http::api_request request(std::string method, std::string body = {},
                          std::string auth = std::string("Bearer ") + token) {
  http::api_request r;
  r.method = std::move(method);
  r.target = "/admin/faults";
  r.authorization = std::move(auth);
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

nlohmann::json faults_of(const http::api_response& r) {
  return nlohmann::json::parse(r.body).at("faults");
}

} // namespace

TEST(AdminFaults, TheTokenIsRequiredAndComparedWhole) {
  EXPECT_TRUE(http::admin_authorized(std::string("Bearer ") + token, token));
  for (const std::string auth :
       {"", "Bearer", "Bearer ", "bearer 0123456789abcdef-admin",
        "Bearer 0123456789abcdef-admi", "Bearer 0123456789abcdef-adminx",
        "Basic 0123456789abcdef-admin"})
    EXPECT_FALSE(http::admin_authorized(auth, token)) << auth;
  EXPECT_FALSE(http::admin_authorized("Bearer ", ""));

  core::fault_board board;
  auto r = http::admin_faults(
      request("PUT", R"({"db_delay_ms":100})", "Bearer wrong"), board, token);
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(board.value(fault::db_delay_ms), 0); // nothing set
  bool challenged = false;
  for (const auto& [k, v] : r.headers)
    challenged |= k == "WWW-Authenticate" && v.rfind("Bearer", 0) == 0;
  EXPECT_TRUE(challenged);
}

TEST(AdminFaults, PutSetsGetShowsDeleteClears) {
  core::fault_board board;
  auto r = http::admin_faults(
      request("PUT", R"({"writer_error_rate":0.25,"redis_delay_ms":200})"),
      board, token);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(board.value(fault::writer_error_rate), 0.25);
  EXPECT_EQ(board.value(fault::redis_delay_ms), 200);
  EXPECT_EQ(board.value(fault::db_delay_ms), 0);
  auto shown = faults_of(http::admin_faults(request("GET"), board, token));
  EXPECT_EQ(shown.size(), 2u) << shown;
  EXPECT_EQ(shown["writer_error_rate"]["value"], 0.25);
  EXPECT_EQ(shown["redis_delay_ms"]["value"], 200);
  EXPECT_TRUE(shown["redis_delay_ms"]["until"].is_null());

  // Merged: a second PUT changes what it names; 0 clears one.
  http::admin_faults(
      request("PUT", R"({"writer_error_rate":0,"db_delay_ms":5})"), board,
      token);
  shown = faults_of(http::admin_faults(request("GET"), board, token));
  EXPECT_EQ(shown.size(), 2u) << shown;
  EXPECT_FALSE(shown.contains("writer_error_rate")) << shown;

  r = http::admin_faults(request("DELETE"), board, token);
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(faults_of(r).empty()) << r.body;
  EXPECT_EQ(board.value(fault::redis_delay_ms), 0);
}

TEST(AdminFaults, ForClearsTheBodysFaultsWhenItEnds) {
  core::fault_board board;
  http::admin_faults(request("PUT", R"({"db_delay_ms":50})"), board, token);
  auto r = http::admin_faults(
      request("PUT", R"({"enqueue_error_rate":1,"for":0.2})"), board, token);
  ASSERT_EQ(r.status, 200u) << r.body;
  auto until = faults_of(r)["enqueue_error_rate"]["until"];
  ASSERT_TRUE(until.is_string()) << r.body;
  EXPECT_EQ(until.get<std::string>().size(), 24u) << until; // ISO, ms, Z
  EXPECT_EQ(board.value(fault::enqueue_error_rate), 1);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(board.value(fault::enqueue_error_rate), 0);
  EXPECT_EQ(board.value(fault::db_delay_ms), 50); // not in that body
  EXPECT_EQ(faults_of(http::admin_faults(request("GET"), board, token)).size(),
            1u);
}

TEST(AdminFaults, BadBodiesAreRefusedWholeWithEveryReason) {
  core::fault_board board;
  for (const std::string body :
       {"", "[]", "{", "{}", R"({"for":5})", R"({"writer_error_rate":1.5})",
        R"({"writer_error_rate":-0.1})", R"({"writer_error_rate":"0.5"})",
        R"({"db_delay_ms":60001})", R"({"db_delay_ms":1.5})",
        R"({"db_delay_ms":true})", R"({"redis_delay_ms":100,"for":0})",
        R"({"redis_delay_ms":100,"for":86401})",
        R"({"redis_delay_ms":100,"lag":3})"}) {
    auto r = http::admin_faults(request("PUT", body), board, token);
    EXPECT_EQ(r.status, 400u) << body;
    auto json = nlohmann::json::parse(r.body);
    EXPECT_EQ(json["statusCode"], 400) << r.body;
    EXPECT_EQ(board.value(fault::redis_delay_ms), 0) << body; // all or nothing
  }
  auto r = http::admin_faults(request("PUT", R"({"lag":3,"db_delay_ms":-1})"),
                              board, token);
  auto messages = nlohmann::json::parse(r.body)["message"];
  ASSERT_EQ(messages.size(), 2u) << r.body;
  EXPECT_NE(r.body.find("unknown fault 'lag'"), std::string::npos) << r.body;

  auto wrong_type = request("PUT", R"({"db_delay_ms":5})");
  wrong_type.content_type = "text/plain";
  EXPECT_EQ(http::admin_faults(wrong_type, board, token).status, 415u);
}

TEST(AdminFaults, ADelayEndsEarlyWhenItsFaultIsCleared) {
  core::fault_board board;
  board.set(fault::db_delay_ms, 60000, std::nullopt);
  auto started = std::chrono::steady_clock::now();
  std::thread clearer([&] {
    std::this_thread::sleep_for(100ms);
    board.clear();
  });
  board.delay(fault::db_delay_ms);
  clearer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(AdminFaults, InjectorsRollTheBoardsChance) {
  auto board = std::make_shared<core::fault_board>();
  core::fault_injector dice{board, fault::writer_crash_rate};
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(dice.roll());
  board->set(fault::writer_crash_rate, 1, std::nullopt);
  EXPECT_THROW(dice.strike("x"), std::runtime_error);
  core::fault_injector half{board, fault::writer_crash_rate, 0.5};
  int hits = 0;
  for (int i = 0; i < 2000; ++i)
    hits += half.roll() ? 1 : 0;
  EXPECT_GT(hits, 800); // ~1000
  EXPECT_LT(hits, 1200);
  core::fault_injector none; // FAULTS off: no board
  EXPECT_FALSE(none.roll());
}
