// libvp_null_callback.so (benchmark only): a RecordFunction global callback
// that does nothing, to measure what RecordFunction itself costs per
// operator once any callback is registered (shared by our probe and by
// torch.profiler), with and without needsInputs (what shapes need), and a
// "minimal profiler" callback (mode 3): name pointer + clock_gettime at
// begin and end into a thread-local ring, shapes' sizes touched, no context
// allocation: a lower bound for any RecordFunction-based recorder.
//
//   vp_bench_null_callback(1, mode)  registers it (mode 0: no inputs,
//                                    1: needsInputs, 2: + touch sizes,
//                                    3: minimal profiler with inputs),
//   vp_bench_null_callback(0, 0)             removes it.
#include <ATen/record_function.h>
#include <time.h>

#include <cstdint>
#include <memory>

namespace {

at::CallbackHandle g_handle = 0;

std::unique_ptr<at::ObserverContext> OnBegin(const at::RecordFunction&) {
  return nullptr;
}

// Touches every input's sizes (what any shape recorder must at least do).
std::unique_ptr<at::ObserverContext> OnBeginTouch(
    const at::RecordFunction& fn) {
  int64_t sum = 0;
  for (const c10::IValue& v : fn.inputs()) {
    if (v.isTensor() && v.toTensor().defined()) {
      sum += v.toTensor().sizes().size();
    }
  }
  asm volatile("" : : "r"(sum));
  return nullptr;
}

struct Ring {
  struct Entry {
    const char* name;
    int64_t ts;
    int64_t dims;
  };
  Entry e[4096];
  unsigned next = 0;
};
thread_local Ring t_ring;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

std::unique_ptr<at::ObserverContext> OnBeginMinimal(
    const at::RecordFunction& fn) {
  int64_t dims = 0;
  for (const c10::IValue& v : fn.inputs()) {
    if (v.isTensor() && v.toTensor().defined()) {
      const c10::IntArrayRef sizes = v.toTensor().sizes();
      dims += sizes.empty() ? 0 : sizes[0];
    }
  }
  Ring& r = t_ring;
  r.e[r.next++ & 4095] = Ring::Entry{fn.name(), NowNs(), dims};
  return nullptr;
}

void OnEnd(const at::RecordFunction&, at::ObserverContext*) {}

void OnEndMinimal(const at::RecordFunction& fn, at::ObserverContext*) {
  Ring& r = t_ring;
  r.e[r.next++ & 4095] = Ring::Entry{nullptr, NowNs(), 0};
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int32_t
vp_bench_null_callback(int32_t on, int32_t needs_inputs) {
  if (g_handle != 0) {
    at::removeCallback(g_handle);
    g_handle = 0;
  }
  if (!on) return 0;
  at::RecordFunctionCallback cb(needs_inputs == 3   ? &OnBeginMinimal
                                : needs_inputs == 2 ? &OnBeginTouch
                                                    : &OnBegin,
                                needs_inputs == 3 ? &OnEndMinimal : &OnEnd);
  cb.needsInputs(needs_inputs != 0);
  cb.scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION,
             at::RecordScope::TORCHSCRIPT_FUNCTION,
             at::RecordScope::USER_SCOPE});
  g_handle = at::addGlobalCallback(cb);
  return 0;
}
