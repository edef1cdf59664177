// libvllm_profiler_torch.so: forwards torch operators (RecordFunction) into
// the probe core through the C ABI only (vllm_profiler/probe.h).
//
// The shim depends on libtorch and the C header, nothing else, so it can be
// rebuilt against any torch with probe/torch/build_shim.sh. It does not link
// the core: vp_torch_shim_init() finds the already-loaded core with
// dlopen(RTLD_NOLOAD) + dlsym, so neither library needs RTLD_GLOBAL.
//
// The RecordFunction callback is registered only while a capture runs (the
// core calls our capture listener at capture start/stop, on the step thread
// under its control lock; addGlobalCallback/removeCallback do not call back
// into the core). Torch calls OnBegin/OnEnd on the thread that runs the
// operator; nothing thrown there escapes (it would unwind through torch).
#include <ATen/record_function.h>
#include <c10/core/ScalarType.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "vllm_profiler/probe.h"

// clang's thread-safety attributes (-Wthread-safety), spelled out: the shim
// builds against torch's headers alone, without abseil's macros.
#if defined(__clang__)
#define VP_CAPABILITY __attribute__((capability("mutex")))
#define VP_SCOPED_CAPABILITY __attribute__((scoped_lockable))
#define VP_GUARDED_BY(x) __attribute__((guarded_by(x)))
#define VP_ACQUIRE(...) __attribute__((acquire_capability(__VA_ARGS__)))
#define VP_RELEASE(...) __attribute__((release_capability(__VA_ARGS__)))
#else
#define VP_CAPABILITY
#define VP_SCOPED_CAPABILITY
#define VP_GUARDED_BY(x)
#define VP_ACQUIRE(...)
#define VP_RELEASE(...)
#endif

namespace {

class VP_CAPABILITY Mutex {
 public:
  void Lock() VP_ACQUIRE() { mu_.lock(); }
  void Unlock() VP_RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class VP_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) VP_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() VP_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

struct CoreApi {
  decltype(&vp_op_begin) op_begin = nullptr;
  decltype(&vp_op_end) op_end = nullptr;
  decltype(&vp_set_capture_listener) set_listener = nullptr;
};
CoreApi g_api;
Mutex g_mu;
at::CallbackHandle g_handle VP_GUARDED_BY(g_mu) = 0;
bool g_registered VP_GUARDED_BY(g_mu) = false;
std::atomic<bool> g_failed{false};

void LogOnce(const char* what) {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    std::fprintf(stderr,
                 "vllm-profiler: torch shim error (%s); operator events are "
                 "off for this process\n",
                 what);
  }
}

// The per-operator context RecordFunction hands back to OnEnd. Its memory
// comes from a small per-thread free list (an operator begins and ends
// thousands of times per step; malloc+free was a visible part of our cost).
// A context freed on another thread than the one that made it simply joins
// that thread's list.
struct OpContext : at::ObserverContext {
  explicit OpContext(uint64_t i) : id(i) {}
  uint64_t id;
  static void* operator new(size_t size);
  static void operator delete(void* p);
};

class ContextPool {
 public:
  ~ContextPool() {
    while (head_ != nullptr) {
      Node* n = head_;
      head_ = n->next;
      ::operator delete(n);
    }
  }
  void* Get() {
    if (head_ == nullptr) return ::operator new(sizeof(OpContext));
    Node* n = head_;
    head_ = n->next;
    --size_;
    return n;
  }
  void Put(void* p) {
    if (size_ >= kMaxFree) {
      ::operator delete(p);
      return;
    }
    Node* n = static_cast<Node*>(p);
    n->next = head_;
    head_ = n;
    ++size_;
  }

 private:
  struct Node {
    Node* next;
  };
  static_assert(sizeof(Node) <= sizeof(OpContext), "node fits a context");
  static constexpr int kMaxFree = 4096;  // Deepest nesting we keep memory for.
  Node* head_ = nullptr;
  int size_ = 0;
};
thread_local ContextPool t_pool;

void* OpContext::operator new(size_t size) {
  if (size != sizeof(OpContext)) return ::operator new(size);
  return t_pool.Get();
}
void OpContext::operator delete(void* p) { t_pool.Put(p); }

// Per-thread scratch for one OnBegin's inputs. Dims are not copied: each
// meta points at the tensor's own sizes, alive during the callback.
struct Scratch {
  static constexpr int kMaxInputs = 32;  // As the core's per-op limit.
  vp_tensor_meta metas[kMaxInputs];
};
thread_local Scratch t_scratch;

template <bool kShapes>
std::unique_ptr<at::ObserverContext> OnBegin(const at::RecordFunction& fn) {
  try {
    uint64_t id;
    if (kShapes) {
      vp_tensor_meta* metas = t_scratch.metas;
      const c10::ArrayRef<const c10::IValue> inputs = fn.inputs();
      const size_t n = std::min<size_t>(inputs.size(), Scratch::kMaxInputs);
      for (size_t i = 0; i < n; ++i) {
        vp_tensor_meta& m = metas[i];
        const c10::IValue& v = inputs[i];
        m = vp_tensor_meta{nullptr, -1, nullptr};
        if (v.isTensor()) {
          const at::Tensor& t = v.toTensor();
          if (t.defined()) {
            const c10::IntArrayRef sizes = t.sizes();
            m.dims = sizes.data();
            m.ndim = static_cast<int32_t>(sizes.size());
            m.dtype = c10::toString(t.scalar_type());
          }
        } else if (v.isScalar()) {
          m.dtype = "Scalar";
        }
      }
      id =
          g_api.op_begin(fn.name(), fn.seqNr(), metas, static_cast<int32_t>(n));
    } else {
      id = g_api.op_begin(fn.name(), fn.seqNr(), nullptr, 0);
    }
    if (id == 0) return nullptr;
    return std::unique_ptr<at::ObserverContext>(new OpContext(id));
  } catch (const std::exception& e) {
    LogOnce(e.what());
    return nullptr;
  } catch (...) {
    LogOnce("exception in operator begin");
    return nullptr;
  }
}

void OnEnd(const at::RecordFunction&, at::ObserverContext* ctx) {
  if (ctx == nullptr) return;
  g_api.op_end(static_cast<OpContext*>(ctx)->id);
}

void OnCapture(int32_t capturing, int32_t record_shapes, void*) {
  try {
    MutexLock lock(&g_mu);
    if (capturing && !g_registered && !g_failed.load()) {
      auto cb = record_shapes
                    ? at::RecordFunctionCallback(&OnBegin<true>, &OnEnd)
                    : at::RecordFunctionCallback(&OnBegin<false>, &OnEnd);
      cb.needsInputs(record_shapes != 0);
      cb.scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION,
                 at::RecordScope::TORCHSCRIPT_FUNCTION,
                 at::RecordScope::USER_SCOPE});
      g_handle = at::addGlobalCallback(cb);
      g_registered = true;
    } else if (!capturing && g_registered) {
      at::removeCallback(g_handle);
      g_registered = false;
    }
  } catch (...) {
    g_failed.store(true);
    LogOnce("could not (un)register the RecordFunction callback");
  }
}

}  // namespace

extern "C" {

// The torch version this shim was compiled against ("1.13.0").
__attribute__((visibility("default"))) const char* vp_torch_shim_built_for(
    void) {
  return TORCH_VERSION;
}

// Connects the shim to the core loaded from `core_path`. 0 on success, -1
// when the core is not loaded or lacks a symbol (logged).
__attribute__((visibility("default"))) int32_t vp_torch_shim_init(
    const char* core_path) {
  try {
    void* h = dlopen(core_path, RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) {
      LogOnce("probe core library not loaded");
      return -1;
    }
    g_api.op_begin =
        reinterpret_cast<decltype(&vp_op_begin)>(dlsym(h, "vp_op_begin"));
    g_api.op_end =
        reinterpret_cast<decltype(&vp_op_end)>(dlsym(h, "vp_op_end"));
    g_api.set_listener = reinterpret_cast<decltype(&vp_set_capture_listener)>(
        dlsym(h, "vp_set_capture_listener"));
    if (!g_api.op_begin || !g_api.op_end || !g_api.set_listener) {
      LogOnce("probe core library lacks the vp_* C ABI");
      return -1;
    }
    g_api.set_listener(&OnCapture, nullptr);
    return 0;
  } catch (...) {
    LogOnce("init failed");
    return -1;
  }
}

}  // extern "C"
