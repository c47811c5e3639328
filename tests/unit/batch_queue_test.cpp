#include <gtest/gtest.h>

#include "core/batch_queue.hpp"

using postd::core::batch_queue;

TEST(BatchQueue, FirstPushSchedulesOneFlush) {
  batch_queue<int> q;
  EXPECT_TRUE(q.push(1));
  EXPECT_FALSE(q.push(2));
  EXPECT_FALSE(q.push(3));
  EXPECT_EQ(q.take(10), (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(q.reschedule()); // nothing left
  EXPECT_TRUE(q.push(4));       // a new round
}

TEST(BatchQueue, TakesAtMostTheCapThenReschedules) {
  batch_queue<int> q;
  for (int i = 0; i < 5; ++i)
    q.push(i);
  EXPECT_EQ(q.take(2), (std::vector<int>{0, 1}));
  EXPECT_TRUE(q.reschedule());
  EXPECT_FALSE(q.push(5)); // a flush is already scheduled
  EXPECT_EQ(q.take(10), (std::vector<int>{2, 3, 4, 5}));
  EXPECT_FALSE(q.reschedule());
}

TEST(BatchQueue, ArrivalsDuringAFlushJoinTheNextOne) {
  batch_queue<int> q;
  EXPECT_TRUE(q.push(1));
  auto first = q.take(10);
  EXPECT_TRUE(q.push(2)); // arrived while the round trip ran
  EXPECT_FALSE(q.reschedule());
  EXPECT_EQ(q.take(10), (std::vector<int>{2}));
}
