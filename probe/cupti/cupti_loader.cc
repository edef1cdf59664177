#include "probe/cupti/cupti_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace vllm_profiler::probe::cupti {
namespace {

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

// libcupti.so first, then libcupti.so.* newest-looking first.
std::vector<std::string> LibrariesIn(const std::string& dir) {
  std::vector<std::string> out;
  if (!IsDir(dir)) return out;
  if (IsFile(dir + "/libcupti.so")) out.push_back(dir + "/libcupti.so");
  std::vector<std::string> versioned;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* entry = readdir(d)) {
      absl::string_view name = entry->d_name;
      if (absl::StartsWith(name, "libcupti.so.") &&
          IsFile(absl::StrCat(dir, "/", name))) {
        versioned.push_back(absl::StrCat(dir, "/", name));
      }
    }
    closedir(d);
  }
  std::sort(versioned.rbegin(), versioned.rend());
  out.insert(out.end(), versioned.begin(), versioned.end());
  return out;
}

void AddUnique(std::vector<std::string> paths, std::vector<std::string>* out) {
  for (std::string& path : paths) {
    if (std::find(out->begin(), out->end(), path) == out->end()) {
      out->push_back(std::move(path));
    }
  }
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

}  // namespace

CuptiSearchInput CuptiSearchInput::FromProcess() {
  CuptiSearchInput input;
  input.cupti_lib_env = Env("VLLM_PROFILER_CUPTI_LIB");
  input.cuda_home_env = Env("CUDA_HOME");
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.find("/torch/lib/") == std::string::npos) continue;
    if (std::find(input.mapped_libraries.begin(), input.mapped_libraries.end(),
                  path) == input.mapped_libraries.end()) {
      input.mapped_libraries.push_back(std::move(path));
    }
  }
  return input;
}

absl::StatusOr<std::vector<std::string>> FindCuptiCandidates(
    const CuptiSearchInput& input) {
  std::vector<std::string> out;
  if (!input.cupti_lib_env.empty()) {
    const std::string& path = input.cupti_lib_env;
    if (IsDir(path)) {
      out = LibrariesIn(path);
      if (out.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "VLLM_PROFILER_CUPTI_LIB=", path, ": no libcupti.so* in folder"));
      }
      return out;
    }
    if (IsFile(path)) return std::vector<std::string>{path};
    return absl::InvalidArgumentError(absl::StrCat(
        "VLLM_PROFILER_CUPTI_LIB=", path, ": no such file or folder"));
  }
  for (const std::string& lib : input.mapped_libraries) {
    const size_t pos = lib.rfind("/torch/lib/");
    if (pos == std::string::npos) continue;
    const std::string site_packages = lib.substr(0, pos);
    AddUnique(LibrariesIn(site_packages + "/nvidia/cuda_cupti/lib"), &out);
    AddUnique(LibrariesIn(site_packages + "/nvidia/cu13/lib"), &out);
  }
  std::vector<std::string> homes;
  if (!input.cuda_home_env.empty()) homes.push_back(input.cuda_home_env);
  if (!input.default_cuda_home.empty()) {
    homes.push_back(input.default_cuda_home);
  }
  for (const std::string& home : homes) {
    for (const char* sub : {"/extras/CUPTI/lib64", "/lib64", "/lib"}) {
      AddUnique(LibrariesIn(home + sub), &out);
    }
  }
  if (input.use_system_search) AddUnique({"libcupti.so"}, &out);
  return out;
}

namespace {

// The real CuptiApi: function pointers resolved from the loaded library.
class DlCuptiApi final : public CuptiApi {
 public:
  DlCuptiApi() = default;
  DlCuptiApi(const DlCuptiApi&) = delete;
  DlCuptiApi& operator=(const DlCuptiApi&) = delete;

  // Resolves every symbol; the name of the first missing one on failure.
  absl::Status Init(void* handle, std::string path) {
    path_ = std::move(path);
    absl::Status status;
    auto resolve = [&](auto& fn, const char* name) {
      void* sym = dlsym(handle, name);
      if (sym == nullptr && status.ok()) {
        status = absl::UnavailableError(
            absl::StrCat(path_, " lacks ", name, " (CUPTI too old?)"));
      }
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(sym);
    };
    resolve(get_version_, "cuptiGetVersion");
    resolve(get_timestamp_, "cuptiGetTimestamp");
    resolve(subscribe_, "cuptiSubscribe");
    resolve(unsubscribe_, "cuptiUnsubscribe");
    resolve(enable_, "cuptiActivityEnable");
    resolve(disable_, "cuptiActivityDisable");
    resolve(register_callbacks_, "cuptiActivityRegisterCallbacks");
    resolve(flush_all_, "cuptiActivityFlushAll");
    resolve(next_record_, "cuptiActivityGetNextRecord");
    resolve(dropped_, "cuptiActivityGetNumDroppedRecords");
    resolve(push_, "cuptiActivityPushExternalCorrelationId");
    resolve(pop_, "cuptiActivityPopExternalCorrelationId");
    resolve(set_thread_id_type_, "cuptiSetThreadIdType");
    resolve(callback_name_, "cuptiGetCallbackName");
    resolve(result_string_, "cuptiGetResultString");
    if (!status.ok()) return status;
    uint32_t version = 0;
    if (get_version_(&version) == CUPTI_SUCCESS) version_ = version;
    return absl::OkStatus();
  }

  CUptiResult GetVersion(uint32_t* v) override { return get_version_(v); }
  CUptiResult GetTimestamp(uint64_t* t) override { return get_timestamp_(t); }
  CUptiResult Subscribe(CUpti_SubscriberHandle* s, CUpti_CallbackFunc cb,
                        void* u) override {
    return subscribe_(s, cb, u);
  }
  CUptiResult Unsubscribe(CUpti_SubscriberHandle s) override {
    return unsubscribe_(s);
  }
  CUptiResult ActivityEnable(CUpti_ActivityKind k) override {
    return enable_(k);
  }
  CUptiResult ActivityDisable(CUpti_ActivityKind k) override {
    return disable_(k);
  }
  CUptiResult ActivityRegisterCallbacks(
      CUpti_BuffersCallbackRequestFunc r,
      CUpti_BuffersCallbackCompleteFunc c) override {
    return register_callbacks_(r, c);
  }
  CUptiResult ActivityFlushAll(uint32_t flag) override {
    return flush_all_(flag);
  }
  CUptiResult ActivityGetNextRecord(uint8_t* b, size_t n,
                                    CUpti_Activity** r) override {
    return next_record_(b, n, r);
  }
  CUptiResult ActivityGetNumDroppedRecords(CUcontext c, uint32_t s,
                                           size_t* d) override {
    return dropped_(c, s, d);
  }
  CUptiResult ActivityPushExternalCorrelationId(CUpti_ExternalCorrelationKind k,
                                                uint64_t id) override {
    return push_(k, id);
  }
  CUptiResult ActivityPopExternalCorrelationId(CUpti_ExternalCorrelationKind k,
                                               uint64_t* id) override {
    return pop_(k, id);
  }
  CUptiResult SetThreadIdType(CUpti_ActivityThreadIdType t) override {
    return set_thread_id_type_(t);
  }
  const char* CallbackName(CUpti_CallbackDomain d, uint32_t cbid) override {
    const char* name = nullptr;
    if (callback_name_(d, cbid, &name) != CUPTI_SUCCESS) return nullptr;
    return name;
  }
  std::string ResultString(CUptiResult r) override {
    const char* text = nullptr;
    if (result_string_(r, &text) == CUPTI_SUCCESS && text != nullptr) {
      return text;
    }
    return absl::StrCat("CUPTI error ", static_cast<int>(r));
  }

  bool DriverLoaded() override { return DeviceCountFn() != nullptr; }

  CUresult DeviceGetCount(int* count) override {
    auto fn = DeviceCountFn();
    if (fn == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
    return fn(count);
  }

  std::string Describe() const override {
    return absl::StrCat("libcupti ", version_, " from ", path_);
  }

 private:
  using DeviceGetCountFn = CUresult (*)(int*);

  // libcuda as already loaded by the application: RTLD_NOLOAD never loads
  // it ourselves (no driver initialization side effects).
  DeviceGetCountFn DeviceCountFn() {
    void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (cuda == nullptr) return nullptr;
    auto fn =
        reinterpret_cast<DeviceGetCountFn>(dlsym(cuda, "cuDeviceGetCount"));
    dlclose(cuda);  // Drops only our reference; the application holds one.
    return fn;
  }

  std::string path_;
  uint32_t version_ = 0;
  decltype(&cuptiGetVersion) get_version_ = nullptr;
  decltype(&cuptiGetTimestamp) get_timestamp_ = nullptr;
  decltype(&cuptiSubscribe) subscribe_ = nullptr;
  decltype(&cuptiUnsubscribe) unsubscribe_ = nullptr;
  decltype(&cuptiActivityEnable) enable_ = nullptr;
  decltype(&cuptiActivityDisable) disable_ = nullptr;
  decltype(&cuptiActivityRegisterCallbacks) register_callbacks_ = nullptr;
  decltype(&cuptiActivityFlushAll) flush_all_ = nullptr;
  decltype(&cuptiActivityGetNextRecord) next_record_ = nullptr;
  decltype(&cuptiActivityGetNumDroppedRecords) dropped_ = nullptr;
  decltype(&cuptiActivityPushExternalCorrelationId) push_ = nullptr;
  decltype(&cuptiActivityPopExternalCorrelationId) pop_ = nullptr;
  decltype(&cuptiSetThreadIdType) set_thread_id_type_ = nullptr;
  decltype(&cuptiGetCallbackName) callback_name_ = nullptr;
  decltype(&cuptiGetResultString) result_string_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CuptiApi>> LoadCuptiApi(
    const CuptiSearchInput& input) {
  absl::StatusOr<std::vector<std::string>> candidates =
      FindCuptiCandidates(input);
  if (!candidates.ok()) {
    return absl::UnavailableError(candidates.status().message());
  }
  std::vector<std::string> errors;
  bool found_file = false;
  for (const std::string& path : *candidates) {
    const bool bare = path.find('/') == std::string::npos;
    // RTLD_LOCAL: CUPTI's symbols stay out of the application's namespace.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      // The loader's own search failing just means "not there either".
      if (bare) continue;
      const char* error = dlerror();
      errors.push_back(error != nullptr ? error : path);
      found_file = true;
      continue;
    }
    found_file = true;
    auto api = std::make_unique<DlCuptiApi>();
    absl::Status status = api->Init(handle, path);
    if (!status.ok()) {
      errors.push_back(std::string(status.message()));
      // Not dlclose()d: unloading CUPTI is not supported by NVIDIA.
      continue;
    }
    return std::unique_ptr<CuptiApi>(std::move(api));
  }
  if (!found_file) {
    return absl::UnavailableError(absl::StrCat(
        "libcupti not found (searched nvidia/cuda_cupti beside torch, ",
        input.cuda_home_env.empty() ? "" : "$CUDA_HOME and ",
        input.default_cuda_home,
        " extras/CUPTI/lib64, lib64, lib and the loader path; set "
        "VLLM_PROFILER_CUPTI_LIB)"));
  }
  return absl::UnavailableError(absl::StrCat("libcupti could not be loaded: ",
                                             absl::StrJoin(errors, "; ")));
}

}  // namespace vllm_profiler::probe::cupti
