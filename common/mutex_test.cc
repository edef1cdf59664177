#include "common/mutex.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vllm_profiler {
namespace {

TEST(MutexTest, CountsUnderContention) {
  Mutex mu;
  int64_t count = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        MutexLock lock(&mu);
        ++count;
      }
    });
  }
  for (auto& t : threads) t.join();
  MutexLock lock(&mu);
  EXPECT_EQ(count, 40000);
}

TEST(CondVarTest, WaitForSignalAndTimeout) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  std::thread t([&] {
    MutexLock lock(&mu);
    ready = true;
    cv.SignalAll();
  });
  {
    MutexLock lock(&mu);
    EXPECT_TRUE(cv.WaitFor(&mu, absl::Seconds(10), [&] { return ready; }));
  }
  t.join();
  MutexLock lock(&mu);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(cv.WaitFor(&mu, absl::Milliseconds(50), [] { return false; }));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
}

TEST(CondVarTest, WaitWithDeadlineReportsTimeoutAndSignal) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  {
    MutexLock lock(&mu);
    EXPECT_TRUE(cv.WaitWithTimeout(&mu, absl::Milliseconds(20)));
  }
  std::thread t([&] {
    MutexLock inner(&mu);
    ready = true;
    cv.Signal();
  });
  {
    MutexLock lock(&mu);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!ready) ASSERT_FALSE(cv.WaitWithDeadline(&mu, deadline));
  }
  t.join();
}

}  // namespace
}  // namespace vllm_profiler
