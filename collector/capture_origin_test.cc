#include "collector/capture_origin.h"

#include "gtest/gtest.h"

namespace vllm_profiler::collector {
namespace {

TEST(CaptureOrigin, EveryOriginHasANameThatReadsBack) {
  EXPECT_EQ(OriginName(v1::CAPTURE_ORIGIN_WINDOW), "window");
  EXPECT_EQ(OriginName(v1::CAPTURE_ORIGIN_COMMAND), "command");
  EXPECT_EQ(OriginName(v1::CAPTURE_ORIGIN_TRIGGER), "trigger");
  EXPECT_EQ(OriginName(v1::CAPTURE_ORIGIN_UNSPECIFIED), "");
  for (int i = v1::CaptureOrigin_MIN; i <= v1::CaptureOrigin_MAX; ++i) {
    const auto origin = static_cast<v1::CaptureOrigin>(i);
    EXPECT_EQ(OriginFromName(OriginName(origin)), origin) << i;
  }
  EXPECT_EQ(OriginFromName("Trigger"), v1::CAPTURE_ORIGIN_UNSPECIFIED);
}

}  // namespace
}  // namespace vllm_profiler::collector
