// A stand-in libcuda.so.1 (SONAME libcuda.so.1) preloaded into the Python
// process of probe_fake_cupti_test, so the tracer's "is CUDA initialized in
// this process" check (dlopen RTLD_NOLOAD + cuDeviceGetCount) says yes.
#include <cuda.h>

extern "C" CUresult cuDeviceGetCount(int* count) {
  *count = 1;
  return CUDA_SUCCESS;
}
