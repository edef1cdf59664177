#include "probe/cupti/activity_buffer_pool.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace vllm_profiler::probe::cupti {
namespace {

TEST(ActivityBufferPoolTest, RefusesBeyondTheCapAndCounts) {
  ActivityBufferPool pool({/*buffer_bytes=*/1024, /*max_bytes=*/3000});
  uint8_t* a = pool.Acquire();
  uint8_t* b = pool.Acquire();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 8, 0u);
  EXPECT_EQ(pool.Acquire(), nullptr);  // A third would exceed 3000 bytes.
  EXPECT_EQ(pool.Acquire(), nullptr);
  EXPECT_EQ(pool.TakeRefused(), 2u);
  EXPECT_EQ(pool.TakeRefused(), 0u);
  EXPECT_EQ(pool.allocated_bytes(), 2048u);
  pool.Release(a);
  EXPECT_EQ(pool.Acquire(), a);  // Reused, not reallocated.
  pool.Release(a);
  pool.Release(b);
  pool.Trim();
  EXPECT_EQ(pool.allocated_bytes(), 0u);
  uint8_t* c = pool.Acquire();
  EXPECT_NE(c, nullptr);
  pool.Release(c);
  pool.Release(nullptr);  // Ignored.
}

TEST(ActivityBufferPoolTest, DefaultsAreKinetos) {
  ActivityBufferPool pool({});
  EXPECT_EQ(pool.buffer_bytes(), 4u << 20);
  int got = 0;
  std::vector<uint8_t*> buffers;
  while (uint8_t* buffer = pool.Acquire()) {
    buffers.push_back(buffer);
    ++got;
  }
  EXPECT_EQ(got, 32);  // 128 MiB / 4 MiB.
  for (uint8_t* buffer : buffers) pool.Release(buffer);
}

}  // namespace
}  // namespace vllm_profiler::probe::cupti
