// RFC 7240 Prefer: the `wait` preference a create may carry.

#include <gtest/gtest.h>

#include "http/prefer.hpp"

using postd::http::max_prefer_wait_seconds;
using postd::http::prefer_wait;

TEST(PreferWait, ReadsWaitAmongOtherPreferences) {
  EXPECT_EQ(prefer_wait("wait=5"), 5);
  EXPECT_EQ(prefer_wait("respond-async, wait=3"), 3);
  EXPECT_EQ(prefer_wait("return=representation; x=1 , WAIT = 2"), 2);
  EXPECT_EQ(prefer_wait("wait=\"4\""), 4);
  EXPECT_EQ(prefer_wait("handling=lenient, wait=7;foo=bar"), 7);
  // A quoted comma does not split preferences.
  EXPECT_EQ(prefer_wait("x=\"a, wait=9\", wait=1"), 1);
}

TEST(PreferWait, CapsLongWaits) {
  EXPECT_EQ(prefer_wait("wait=10"), 10);
  EXPECT_EQ(prefer_wait("wait=11"), max_prefer_wait_seconds);
  EXPECT_EQ(prefer_wait("wait=99999999999999999999"), max_prefer_wait_seconds);
}

TEST(PreferWait, IgnoresWhatItDoesNotUnderstand) {
  for (const char* prefer :
       {"", "respond-async", "wait", "wait=", "wait=0", "wait=-1", "wait=1.5",
        "wait=soon", "waiting=3", "await=3", "wait=\"\""})
    EXPECT_EQ(prefer_wait(prefer), std::nullopt) << prefer;
}
