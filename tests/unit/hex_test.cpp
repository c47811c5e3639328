#include <gtest/gtest.h>

#include "core/hex.hpp"

using namespace postd::core;

TEST(Hex, EveryByteBecomesTwoLowerCaseDigits) {
  EXPECT_EQ(to_hex(""), "");
  EXPECT_EQ(to_hex(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
  EXPECT_EQ(to_hex("2026|id"), "323032367c6964");
}

TEST(Hex, ReadsEitherCaseBackAndRefusesTheRest) {
  EXPECT_EQ(from_hex("000FA0ff"), std::string("\x00\x0f\xa0\xff", 4));
  EXPECT_EQ(from_hex(""), "");
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
  EXPECT_FALSE(from_hex("0g"));
  std::string all;
  for (int b = 0; b < 256; ++b)
    all += static_cast<char>(b);
  EXPECT_EQ(from_hex(to_hex(all)), all);
}
