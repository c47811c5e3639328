// INFO replication, as /health shows it.

#include <gtest/gtest.h>

#include "persistence/bull_queue.hpp"

using postd::persistence::parse_replication;

TEST(ReplicationInfo, ReadsTheRoleAndEachReplicasLag) {
  auto r = parse_replication(
      "# Replication\r\n"
      "role:master\r\n"
      "connected_slaves:2\r\n"
      "slave0:ip=127.0.0.1,port=6380,state=online,offset=1000,lag=0\r\n"
      "slave1:ip=10.0.0.7,port=6381,state=wait_bgsave,offset=400,lag=3\r\n"
      "master_failover_state:no-failover\r\n"
      "master_repl_offset:1200\r\n");
  EXPECT_EQ(r.role, "master");
  ASSERT_EQ(r.replicas.size(), 2u);
  EXPECT_EQ(r.replicas[0].address, "127.0.0.1:6380");
  EXPECT_EQ(r.replicas[0].state, "online");
  EXPECT_EQ(r.replicas[0].lag_bytes, 200);
  EXPECT_EQ(r.replicas[0].lag_seconds, 0);
  EXPECT_EQ(r.replicas[1].address, "10.0.0.7:6381");
  EXPECT_EQ(r.replicas[1].state, "wait_bgsave");
  EXPECT_EQ(r.replicas[1].lag_bytes, 800);
  EXPECT_EQ(r.replicas[1].lag_seconds, 3);
}

TEST(ReplicationInfo, AReplicaOrNothingKnown) {
  auto replica = parse_replication("role:slave\r\nmaster_host:127.0.0.1\r\n");
  EXPECT_EQ(replica.role, "slave");
  EXPECT_TRUE(replica.replicas.empty());
  auto nothing = parse_replication("");
  EXPECT_EQ(nothing.role, "");
  EXPECT_TRUE(nothing.replicas.empty());
  // A replica ahead of the offset read (INFO is not atomic) lags by 0.
  auto ahead = parse_replication(
      "role:master\nslave0:ip=a,port=1,state=online,offset=90,lag=1\n"
      "master_repl_offset:80\n");
  ASSERT_EQ(ahead.replicas.size(), 1u);
  EXPECT_EQ(ahead.replicas[0].lag_bytes, 0);
}
