// Host:port lists as REDIS_SENTINELS spells them.

#include <stdexcept>

#include <gtest/gtest.h>

#include "core/endpoint.hpp"

using postd::core::endpoint;
using postd::core::parse_endpoints;

TEST(Endpoint, ParsesAListInOrderWithSpacesAndIpv6) {
  EXPECT_EQ(
      parse_endpoints("a:1, 10.0.0.2:26379 ,[::1]:26380"),
      (std::vector<endpoint>{{"a", 1}, {"10.0.0.2", 26379}, {"::1", 26380}}));
  EXPECT_TRUE(parse_endpoints("").empty());
  EXPECT_TRUE(parse_endpoints("  ").empty());
}

TEST(Endpoint, PrintsAsItIsWritten) {
  EXPECT_EQ((endpoint{"a", 1}).to_string(), "a:1");
  EXPECT_EQ((endpoint{"::1", 26379}).to_string(), "[::1]:26379");
}

TEST(Endpoint, RefusesABadEntryNamingIt) {
  for (const auto* bad :
       {"a", "a:", ":1", "a:0", "a:65536", "a:1x", "a:-1", "::1:26379",
        "[::1]26379", "[::1", "a:1,", ",a:1", "a:1,,b:2"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(parse_endpoints(bad), std::invalid_argument);
  }
  try {
    parse_endpoints("a:1,b");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
  }
}
