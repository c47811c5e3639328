#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/reply_once.hpp"

using postd::core::answer_claim;
using postd::core::reply_once;

namespace {

struct recorder {
  std::vector<std::string> answers;
  reply_once<std::string> reply(std::shared_ptr<answer_claim> claim) {
    return {std::move(claim),
            [this](std::string a) { answers.push_back(std::move(a)); },
            [] { return std::string("dropped"); }};
  }
};

} // namespace

TEST(ReplyOnce, TheFirstAnswerWinsAcrossCopies) {
  recorder r;
  auto claim = std::make_shared<answer_claim>();
  {
    auto reply = r.reply(claim);
    auto copy = reply;
    copy("first");
    reply("second");
    copy("third");
  }
  EXPECT_EQ(r.answers, std::vector<std::string>{"first"});
  EXPECT_TRUE(claim->taken());
}

TEST(ReplyOnce, TheLastCopyDroppedUnansweredDeliversTheFallback) {
  recorder r;
  std::optional<reply_once<std::string>> kept;
  {
    auto reply = r.reply(std::make_shared<answer_claim>());
    kept = reply; // a copy still alive: nothing yet
  }
  EXPECT_TRUE(r.answers.empty());
  kept.reset();
  EXPECT_EQ(r.answers, std::vector<std::string>{"dropped"});
}

TEST(ReplyOnce, AnotherClaimantSilencesBothAnswerAndFallback) {
  recorder r;
  auto claim = std::make_shared<answer_claim>();
  {
    auto reply = r.reply(claim);
    EXPECT_TRUE(claim->claim()); // the deadline answered
    reply("too late");
  }
  EXPECT_TRUE(r.answers.empty());
  EXPECT_FALSE(claim->claim());
}
