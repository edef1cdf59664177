#include "gtest/gtest.h"
#include "proto/profiler.pb.h"
TEST(Proto, RoundTrip) {
  vllm_profiler::v1::Hello h;
  h.set_pid(42);
  std::string s = h.SerializeAsString();
  vllm_profiler::v1::Hello g;
  ASSERT_TRUE(g.ParseFromString(s));
  EXPECT_EQ(g.pid(), 42);
}
