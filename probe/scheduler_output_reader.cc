#include "probe/scheduler_output_reader.h"

#include <dlfcn.h>
#include <sys/types.h>

#include <cstring>

namespace vllm_profiler::probe {
namespace {

// Opaque: only pointers pass through here, never a field of the struct.
struct PyObject;
using Py_ssize_t = ssize_t;

// The stable-ABI functions used, found with dlsym.
struct PythonApi {
  PyObject* (*GetAttr)(PyObject*, PyObject*);
  PyObject* (*InternFromString)(const char*);
  Py_ssize_t (*DictSize)(PyObject*);
  int (*DictNext)(PyObject*, Py_ssize_t*, PyObject**, PyObject**);
  PyObject* (*DictGetItem)(PyObject*, PyObject*);  // Borrowed; never raises.
  const char* (*UnicodeAsUTF8AndSize)(PyObject*, Py_ssize_t*);
  long long (*LongAsLongLong)(PyObject*);
  Py_ssize_t (*ObjectSize)(PyObject*);
  int (*ObjectIsTrue)(PyObject*);
  PyObject* (*ErrOccurred)();
  void (*ErrClear)();
  void (*DecRef)(PyObject*);
  // For MakeStepFunctions.
  PyObject* (*CFunctionNewEx)(void*, PyObject*, PyObject*);
  PyObject* (*TupleNew)(Py_ssize_t);
  int (*TupleSetItem)(PyObject*, Py_ssize_t, PyObject*);
  PyObject* (*LongFromLongLong)(long long);
  void (*IncRef)(PyObject*);
  PyObject* none = nullptr;  // &_Py_NoneStruct.
  bool ok = false;
};

template <typename Fn>
bool Find(const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
  return *fn != nullptr;
}

PythonApi LoadApi() {
  PythonApi a;
  a.ok = Find("PyObject_GetAttr", &a.GetAttr) &&
         Find("PyUnicode_InternFromString", &a.InternFromString) &&
         Find("PyDict_Size", &a.DictSize) && Find("PyDict_Next", &a.DictNext) &&
         Find("PyDict_GetItem", &a.DictGetItem) &&
         Find("PyUnicode_AsUTF8AndSize", &a.UnicodeAsUTF8AndSize) &&
         Find("PyLong_AsLongLong", &a.LongAsLongLong) &&
         Find("PyObject_Size", &a.ObjectSize) &&
         Find("PyObject_IsTrue", &a.ObjectIsTrue) &&
         Find("PyErr_Occurred", &a.ErrOccurred) &&
         Find("PyErr_Clear", &a.ErrClear) && Find("Py_DecRef", &a.DecRef) &&
         Find("PyCFunction_NewEx", &a.CFunctionNewEx) &&
         Find("PyTuple_New", &a.TupleNew) &&
         Find("PyTuple_SetItem", &a.TupleSetItem) &&
         Find("PyLong_FromLongLong", &a.LongFromLongLong) &&
         Find("Py_IncRef", &a.IncRef);
  a.none = static_cast<PyObject*>(dlsym(RTLD_DEFAULT, "_Py_NoneStruct"));
  a.ok = a.ok && a.none != nullptr;
  return a;
}

const PythonApi& Api() {
  static const PythonApi api = LoadApi();
  return api;
}

// A new reference, released at scope end.
class Ref {
 public:
  explicit Ref(PyObject* o) : o_(o) {}
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  ~Ref() {
    if (o_ != nullptr) Api().DecRef(o_);
  }
  PyObject* get() const { return o_; }

 private:
  PyObject* const o_;
};

// The attribute names read, as interned str objects made once (under the
// GIL, by the first read) and kept for the process: PyObject_GetAttrString
// would make a str from the C string at every read.
enum Name {
  kNumScheduledTokens,
  kTotalNumScheduledTokens,
  kScheduledSpecDecodeTokens,
  kScheduledNewReqs,
  kScheduledCachedReqs,
  kResumedReqIds,
  kFinishedReqIds,
  kNumNames
};
constexpr const char* kNames[kNumNames] = {"num_scheduled_tokens",
                                           "total_num_scheduled_tokens",
                                           "scheduled_spec_decode_tokens",
                                           "scheduled_new_reqs",
                                           "scheduled_cached_reqs",
                                           "resumed_req_ids",
                                           "finished_req_ids"};
PyObject* g_names[kNumNames] = {};  // Written and read with the GIL held.

bool MakeNames(const PythonApi& a) {
  if (g_names[kNumNames - 1] != nullptr) return true;
  for (int i = 0; i < kNumNames; ++i) {
    if (g_names[i] == nullptr) g_names[i] = a.InternFromString(kNames[i]);
    if (g_names[i] == nullptr) return false;
  }
  return true;
}

// The reader proper. Every failure path clears the Python error it made.
class Reader {
 public:
  explicit Reader(const PythonApi& api) : a_(api) {}

  bool Read(PyObject* so, SchedulerBatch* out) {
    const bool ok = MakeNames(a_) && ReadAll(so, out);
    if (!ok && a_.ErrOccurred() != nullptr) a_.ErrClear();
    return ok;
  }

 private:
  PyObject* Attr(PyObject* o, Name name) {
    return a_.GetAttr(o, g_names[name]);
  }
  // len(getattr(o, name)), or -1.
  Py_ssize_t AttrLen(PyObject* o, Name name) {
    Ref v(Attr(o, name));
    return v.get() == nullptr ? -1 : a_.ObjectSize(v.get());
  }

  bool ReadAll(PyObject* so, SchedulerBatch* out) {
    Ref per_req(Attr(so, kNumScheduledTokens));
    if (per_req.get() == nullptr) return false;
    const Py_ssize_t n_req = a_.DictSize(per_req.get());
    if (n_req < 0) return false;
    Ref total(Attr(so, kTotalNumScheduledTokens));
    if (total.get() == nullptr) return false;
    const long long tok = a_.LongAsLongLong(total.get());
    if (tok == -1 && a_.ErrOccurred() != nullptr) return false;
    long long n_pre = 0;
    // One token per request: every one is decoding (as pack_batch).
    if (tok != n_req && !CountPrefill(so, per_req.get(), &n_pre)) return false;
    if (!JoinIds(per_req.get(), out->request_ids)) return false;
    const Py_ssize_t n_new = AttrLen(so, kScheduledNewReqs);
    if (n_new < 0) return false;
    Ref cached(Attr(so, kScheduledCachedReqs));
    if (cached.get() == nullptr) return false;
    const Py_ssize_t n_resumed = AttrLen(cached.get(), kResumedReqIds);
    if (n_resumed < 0) return false;
    const Py_ssize_t n_finished = AttrLen(so, kFinishedReqIds);
    if (n_finished < 0) return false;
    const int64_t values[8] = {n_req, tok,       n_pre,      n_req - n_pre,
                               n_new, n_resumed, n_finished, n_req};
    std::memcpy(out->values, values, sizeof(values));
    return true;
  }

  // Requests scheduling more tokens than one plus their speculative ones.
  bool CountPrefill(PyObject* so, PyObject* per_req, long long* n_pre) {
    Ref spec(Attr(so, kScheduledSpecDecodeTokens));
    if (spec.get() == nullptr) return false;
    const int truthy = a_.ObjectIsTrue(spec.get());
    if (truthy < 0) return false;
    // Not a dict: no speculative tokens (as batch_shape).
    PyObject* spec_dict = nullptr;
    if (truthy == 1) {
      if (a_.DictSize(spec.get()) >= 0) {
        spec_dict = spec.get();
      } else {
        a_.ErrClear();
      }
    }
    Py_ssize_t pos = 0;
    PyObject* key;
    PyObject* value;
    while (a_.DictNext(per_req, &pos, &key, &value)) {
      const long long tokens = a_.LongAsLongLong(value);
      if (tokens == -1 && a_.ErrOccurred() != nullptr) return false;
      long long n_spec = 0;
      if (spec_dict != nullptr) {
        PyObject* s = a_.DictGetItem(spec_dict, key);
        if (s != nullptr) {
          n_spec = a_.ObjectSize(s);
          if (n_spec < 0) {
            a_.ErrClear();
            n_spec = 0;
          }
        }
      }
      if (tokens > 1 + n_spec) ++*n_pre;
    }
    return true;
  }

  // The first kMaxRequestIds ids comma-joined; false for a non-str id, an
  // id holding a comma, or more than kMaxRequestIdBytes.
  bool JoinIds(PyObject* per_req, char* dst) {
    size_t used = 0;
    Py_ssize_t pos = 0;
    PyObject* key;
    PyObject* value;
    for (int i = 0; i < SchedulerBatch::kMaxRequestIds &&
                    a_.DictNext(per_req, &pos, &key, &value);
         ++i) {
      Py_ssize_t len = 0;
      const char* id = a_.UnicodeAsUTF8AndSize(key, &len);
      if (id == nullptr) return false;
      const size_t need = static_cast<size_t>(len) + (i > 0 ? 1 : 0);
      if (used + need > SchedulerBatch::kMaxRequestIdBytes ||
          std::memchr(id, ',', static_cast<size_t>(len)) != nullptr) {
        return false;
      }
      if (i > 0) dst[used++] = ',';
      std::memcpy(dst + used, id, static_cast<size_t>(len));
      used += static_cast<size_t>(len);
    }
    dst[used] = '\0';
    return true;
  }

  const PythonApi& a_;
};

}  // namespace

bool SchedulerReaderAvailable() { return Api().ok; }

namespace {

// PyMethodDef as the stable ABI lays it out.
struct MethodDef {
  const char* name;
  void* fn;
  int flags;
  const char* doc;
};
constexpr int kMethNoArgs = 0x0004;  // METH_NOARGS
constexpr int kMethO = 0x0008;       // METH_O

}  // namespace

void* MakeStepFunctions(const StepFunction* functions, int n) {
  const PythonApi& a = Api();
  if (!a.ok || n <= 0) return nullptr;
  // Kept for the process: a builtin function points at its definition.
  auto* defs = new MethodDef[n];
  PyObject* tuple = a.TupleNew(n);
  if (tuple == nullptr) return nullptr;
  for (int i = 0; i < n; ++i) {
    defs[i] =
        MethodDef{functions[i].name, reinterpret_cast<void*>(functions[i].fn),
                  functions[i].takes_arg ? kMethO : kMethNoArgs, nullptr};
    PyObject* f = a.CFunctionNewEx(&defs[i], nullptr, nullptr);
    if (f == nullptr || a.TupleSetItem(tuple, i, f) != 0) {  // Steals f.
      a.DecRef(tuple);
      return nullptr;
    }
  }
  return tuple;
}

void* PythonInt(int64_t value) { return Api().LongFromLongLong(value); }

void* PythonNone() {
  Api().IncRef(Api().none);
  return Api().none;
}

bool ReadSchedulerOutput(void* scheduler_output, SchedulerBatch* out) {
  const PythonApi& api = Api();
  if (!api.ok || scheduler_output == nullptr) return false;
  return Reader(api).Read(static_cast<PyObject*>(scheduler_output), out);
}

}  // namespace vllm_profiler::probe
