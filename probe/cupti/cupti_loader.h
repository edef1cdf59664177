// Finding and loading libcupti at run time (dlopen + dlsym; the probe never
// links libcupti, so it loads where there is no CUDA at all).
//
// Search order, first hit wins:
//   1. $VLLM_PROFILER_CUPTI_LIB: a libcupti file, or a folder holding
//      libcupti.so*. When set, nothing else is tried (a wrong override is
//      reported, not papered over).
//   2. The folder of the CUPTI wheel beside the torch this process loaded:
//      for each library mapped from ".../site-packages/torch/lib/" (read
//      from /proc/self/maps), ".../site-packages/nvidia/cuda_cupti/lib",
//      then ".../site-packages/nvidia/cu13/lib" (CUDA 13 wheels' layout).
//   3. The CUDA toolkit: $CUDA_HOME, then /usr/local/cuda; in each
//      extras/CUPTI/lib64, lib64, lib.
//   4. The dynamic loader's own search ("libcupti.so", LD_LIBRARY_PATH,
//      ldconfig cache).
// In a folder, "libcupti.so" is preferred, then the versioned names
// (libcupti.so.13, libcupti.so.12.4...), newest first by name.
#ifndef VLLM_PROFILER_PROBE_CUPTI_CUPTI_LOADER_H_
#define VLLM_PROFILER_PROBE_CUPTI_CUPTI_LOADER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probe/cupti/cupti_api.h"

namespace vllm_profiler::probe::cupti {

// What the search looks at; FromProcess() reads the real environment.
struct CuptiSearchInput {
  std::string cupti_lib_env;  // VLLM_PROFILER_CUPTI_LIB
  std::string cuda_home_env;  // CUDA_HOME
  std::string default_cuda_home = "/usr/local/cuda";
  // Paths of the shared objects mapped in this process.
  std::vector<std::string> mapped_libraries;
  // Try the dynamic loader's search last.
  bool use_system_search = true;

  static CuptiSearchInput FromProcess();
};

// Candidate libcupti files that exist, in search order; the last entry is
// the bare "libcupti.so" when use_system_search. Errors: only for a broken
// override (INVALID_ARGUMENT "VLLM_PROFILER_CUPTI_LIB=...: ...").
absl::StatusOr<std::vector<std::string>> FindCuptiCandidates(
    const CuptiSearchInput& input);

// dlopen()s the first candidate that loads and has every symbol the tracer
// uses. UNAVAILABLE "libcupti not found (searched ...)" or "libcupti could
// not be loaded: ..." otherwise. The library is never unloaded.
absl::StatusOr<std::unique_ptr<CuptiApi>> LoadCuptiApi(
    const CuptiSearchInput& input);

}  // namespace vllm_profiler::probe::cupti

#endif  // VLLM_PROFILER_PROBE_CUPTI_CUPTI_LOADER_H_
