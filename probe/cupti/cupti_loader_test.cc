#include "probe/cupti/cupti_loader.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler::probe::cupti {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CuptiLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    root_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    MakeDirs(root_);
  }

  static void MakeDirs(const std::string& path) {
    std::string partial;
    for (size_t i = 1; i <= path.size(); ++i) {
      if (i == path.size() || path[i] == '/') {
        mkdir(path.substr(0, i).c_str(), 0755);
      }
    }
  }
  // An empty (not loadable) file.
  std::string Touch(const std::string& relative) {
    const std::string path = root_ + "/" + relative;
    MakeDirs(path.substr(0, path.rfind('/')));
    std::ofstream(path) << "";
    return path;
  }
  CuptiSearchInput Input() const {
    CuptiSearchInput input;
    input.default_cuda_home = root_ + "/no-default-cuda";
    input.use_system_search = false;
    return input;
  }

  std::string root_;
};

TEST_F(CuptiLoaderTest, SearchOrderTorchWheelThenToolkits) {
  const std::string wheel = Touch(
      "venv/lib/python3.11/site-packages/nvidia/cuda_cupti/lib/libcupti.so.12");
  const std::string cu13 =
      Touch("venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcupti.so.13");
  const std::string extras = Touch("cuda-home/extras/CUPTI/lib64/libcupti.so");
  const std::string lib64_old = Touch("cuda-home/lib64/libcupti.so.11.8");
  const std::string lib64_new = Touch("cuda-home/lib64/libcupti.so.12.4");
  const std::string default_lib = Touch("usr-local-cuda/lib/libcupti.so.13");
  Touch("cuda-home/lib64/libcudart.so.12");  // Not CUPTI.
  CuptiSearchInput input = Input();
  input.mapped_libraries = {
      root_ + "/venv/lib/python3.11/site-packages/torch/lib/libc10.so",
      root_ + "/venv/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so"};
  input.cuda_home_env = root_ + "/cuda-home";
  input.default_cuda_home = root_ + "/usr-local-cuda";
  input.use_system_search = true;
  absl::StatusOr<std::vector<std::string>> found = FindCuptiCandidates(input);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(*found, ElementsAre(wheel, cu13, extras, lib64_new, lib64_old,
                                  default_lib, "libcupti.so"));
}

TEST_F(CuptiLoaderTest, EnvOverrideFileWinsAlone) {
  const std::string file = Touch("override/libcupti.so.2025");
  Touch("cuda-home/lib64/libcupti.so");
  CuptiSearchInput input = Input();
  input.cupti_lib_env = file;
  input.cuda_home_env = root_ + "/cuda-home";
  input.use_system_search = true;
  absl::StatusOr<std::vector<std::string>> found = FindCuptiCandidates(input);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(*found, ElementsAre(file));
}

TEST_F(CuptiLoaderTest, EnvOverrideFolder) {
  const std::string versioned = Touch("override/libcupti.so.12");
  const std::string plain = Touch("override/libcupti.so");
  CuptiSearchInput input = Input();
  input.cupti_lib_env = root_ + "/override";
  absl::StatusOr<std::vector<std::string>> found = FindCuptiCandidates(input);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(*found, ElementsAre(plain, versioned));
}

TEST_F(CuptiLoaderTest, BrokenEnvOverrideIsReportedExactly) {
  CuptiSearchInput input = Input();
  input.cupti_lib_env = root_ + "/missing";
  absl::StatusOr<std::vector<std::string>> found = FindCuptiCandidates(input);
  EXPECT_EQ(found.status(),
            absl::InvalidArgumentError("VLLM_PROFILER_CUPTI_LIB=" + root_ +
                                       "/missing: no such file or folder"));
  MakeDirs(root_ + "/empty");
  input.cupti_lib_env = root_ + "/empty";
  found = FindCuptiCandidates(input);
  EXPECT_EQ(found.status(),
            absl::InvalidArgumentError("VLLM_PROFILER_CUPTI_LIB=" + root_ +
                                       "/empty: no libcupti.so* in folder"));
  // Loading turns it into UNAVAILABLE (GPU activity off, capture goes on).
  absl::StatusOr<std::unique_ptr<CuptiApi>> api = LoadCuptiApi(input);
  EXPECT_EQ(api.status(),
            absl::UnavailableError("VLLM_PROFILER_CUPTI_LIB=" + root_ +
                                   "/empty: no libcupti.so* in folder"));
}

TEST_F(CuptiLoaderTest, NoLibcuptiAnywhere) {
  CuptiSearchInput input = Input();
  input.mapped_libraries = {root_ + "/site-packages/torch/lib/libc10.so"};
  absl::StatusOr<std::vector<std::string>> found = FindCuptiCandidates(input);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  absl::StatusOr<std::unique_ptr<CuptiApi>> api = LoadCuptiApi(input);
  EXPECT_EQ(api.status(),
            absl::UnavailableError(
                "libcupti not found (searched nvidia/cuda_cupti beside "
                "torch, " +
                root_ +
                "/no-default-cuda extras/CUPTI/lib64, lib64, lib and the "
                "loader path; set VLLM_PROFILER_CUPTI_LIB)"));
}

TEST_F(CuptiLoaderTest, UnloadableFileIsReported) {
  const std::string bogus = Touch("bogus/libcupti.so");
  CuptiSearchInput input = Input();
  input.cupti_lib_env = bogus;
  absl::StatusOr<std::unique_ptr<CuptiApi>> api = LoadCuptiApi(input);
  EXPECT_EQ(api.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(api.status().message(),
              HasSubstr("libcupti could not be loaded: " + bogus));
}

// This machine has the CUDA 13 toolkit (libcupti included) but no driver.
TEST_F(CuptiLoaderTest, RealLibcuptiLoadsWithoutADriver) {
  CuptiSearchInput input;
  input.use_system_search = false;
  input.default_cuda_home = "/usr/local/cuda";
  absl::StatusOr<std::vector<std::string>> found = FindCuptiCandidates(input);
  ASSERT_TRUE(found.ok());
  if (found->empty()) GTEST_SKIP() << "no libcupti under /usr/local/cuda";
  absl::StatusOr<std::unique_ptr<CuptiApi>> api = LoadCuptiApi(input);
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_THAT((*api)->Describe(), HasSubstr("libcupti "));
  EXPECT_THAT((*api)->Describe(), HasSubstr(" from /usr/local/cuda/"));
  // The test process never used CUDA: libcuda is not loaded, and the
  // loader never loads it itself.
  EXPECT_FALSE((*api)->DriverLoaded());
  int count = -1;
  EXPECT_EQ((*api)->DeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED);
  EXPECT_EQ(
      (*api)->ResultString(CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED),
      "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED");
  // What works without a driver: the callback name tables the converter
  // uses for API records, and the activity clock.
  EXPECT_STREQ(
      (*api)->CallbackName(CUPTI_CB_DOMAIN_RUNTIME_API,
                           CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000),
      "cudaLaunchKernel_v7000");
  EXPECT_STREQ((*api)->CallbackName(CUPTI_CB_DOMAIN_DRIVER_API,
                                    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel),
               "cuLaunchKernel");
  uint64_t ts = 0;
  EXPECT_EQ((*api)->GetTimestamp(&ts), CUPTI_SUCCESS);
  EXPECT_GT(ts, 0u);
}

}  // namespace
}  // namespace vllm_profiler::probe::cupti
