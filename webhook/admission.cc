#include "webhook/admission.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "webhook/flight_annotations.h"

namespace vllm_profiler::webhook {
namespace {

using json = nlohmann::json;

constexpr char kApiVersion[] = "admission.k8s.io/v1";
constexpr char kWarningPrefix[] = "vllm-profiler: ";

// Serialises without ever throwing: parsed strings are valid UTF-8 already,
// `replace` covers anything else.
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A user-supplied string for a message or log line: at most 64 bytes,
// non-printable bytes C-escaped (no log injection), in double quotes.
std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 64;
  return absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMax)),
                      s.size() > kMax ? "...\"" : "\"");
}

// The member `key` of `obj`, or nullptr when obj is not an object, the key
// is absent or its value is null (the API server omits empty fields; null is
// treated the same way).
const json* Member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string StringOr(const json* v, std::string fallback = "") {
  if (v == nullptr || !v->is_string()) return fallback;
  return v->get_ref<const std::string&>();
}

// Type checks of the pod fields the webhook reads. The first mismatch is
// kept with its path, e.g. "request.object.spec.containers[0].env[1].name:
// expected string, got number".
class TypeChecker {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Optional member of the given type (absent or null is fine).
  const json* Optional(const json& parent, const char* key, json::value_t type,
                       const std::string& path) {
    const json* v = Member(parent, key);
    if (v == nullptr || !ok()) return nullptr;
    if (!Is(*v, type)) {
      Fail(absl::StrCat(path, ".", key), type, *v);
      return nullptr;
    }
    return v;
  }

  const json* Required(const json& parent, const char* key, json::value_t type,
                       const std::string& path) {
    if (!ok()) return nullptr;
    const json* v = Member(parent, key);
    if (v == nullptr) {
      error_ = absl::StrCat(path, ".", key, ": required ", Name(type),
                            " is missing");
      return nullptr;
    }
    return Optional(parent, key, type, path);
  }

  // Every element of `array` is an object with a string `name` (and string
  // `string_fields` when present).
  void NamedObjects(const json* array, const std::string& path,
                    std::initializer_list<const char*> string_fields = {}) {
    if (array == nullptr) return;
    for (size_t i = 0; i < array->size() && ok(); ++i) {
      std::string item = absl::StrCat(path, "[", i, "]");
      const json& e = (*array)[i];
      if (!e.is_object()) {
        Fail(item, json::value_t::object, e);
        return;
      }
      Required(e, "name", json::value_t::string, item);
      for (const char* f : string_fields) {
        Optional(e, f, json::value_t::string, item);
      }
    }
  }

  void StringMap(const json* obj, const std::string& path) {
    if (obj == nullptr) return;
    for (auto it = obj->begin(); it != obj->end() && ok(); ++it) {
      if (!it->is_string()) {
        Fail(absl::StrCat(path, "[\"", it.key(), "\"]"), json::value_t::string,
             *it);
      }
    }
  }

 private:
  static bool Is(const json& v, json::value_t type) {
    switch (type) {
      case json::value_t::object:
        return v.is_object();
      case json::value_t::array:
        return v.is_array();
      case json::value_t::string:
        return v.is_string();
      case json::value_t::boolean:
        return v.is_boolean();
      case json::value_t::number_integer:
        return v.is_number_integer();
      default:
        return false;
    }
  }
  static const char* Name(json::value_t type) {
    switch (type) {
      case json::value_t::object:
        return "object";
      case json::value_t::array:
        return "array";
      case json::value_t::string:
        return "string";
      case json::value_t::boolean:
        return "boolean";
      case json::value_t::number_integer:
        return "integer";
      default:
        return "value";
    }
  }
  void Fail(const std::string& path, json::value_t type, const json& got) {
    error_ = absl::StrCat(path, ": expected ", Name(type), ", got ",
                          got.type_name());
  }

  std::string error_;
};

// The checked view of a pod that the rules and the patch builder use. All
// pointers point into the parsed review and are of the checked types (or
// null when absent).
struct PodView {
  const json* metadata = nullptr;
  const json* labels = nullptr;
  const json* annotations = nullptr;
  const json* spec = nullptr;
  const json* containers = nullptr;
  const json* init_containers = nullptr;
  const json* volumes = nullptr;
  bool host_network = false;
  // spec.securityContext.runAsUser == 0.
  bool runs_as_root = false;
  std::string name;
  std::string generate_name;
  std::string ns;

  std::optional<std::string> Annotation(const char* key) const {
    const json* v = annotations ? Member(*annotations, key) : nullptr;
    if (v == nullptr) return std::nullopt;
    return v->get<std::string>();
  }
};

// metadata: name, generateName, namespace, labels, annotations.
void CheckMetadata(const json& metadata, const std::string& path,
                   TypeChecker* t, PodView* view) {
  view->name =
      StringOr(t->Optional(metadata, "name", json::value_t::string, path));
  view->generate_name = StringOr(
      t->Optional(metadata, "generateName", json::value_t::string, path));
  view->ns =
      StringOr(t->Optional(metadata, "namespace", json::value_t::string, path));
  view->labels = t->Optional(metadata, "labels", json::value_t::object, path);
  t->StringMap(view->labels, path + ".labels");
  view->annotations =
      t->Optional(metadata, "annotations", json::value_t::object, path);
  t->StringMap(view->annotations, path + ".annotations");
}

// The pod-level spec fields: container and volume arrays, host network, the
// pod's runAsUser.
void CheckPodSpec(const json& spec, const std::string& path, TypeChecker* t,
                  PodView* view) {
  view->containers =
      t->Required(spec, "containers", json::value_t::array, path);
  view->init_containers =
      t->Optional(spec, "initContainers", json::value_t::array, path);
  view->volumes = t->Optional(spec, "volumes", json::value_t::array, path);
  const json* hn =
      t->Optional(spec, "hostNetwork", json::value_t::boolean, path);
  view->host_network = hn != nullptr && hn->get<bool>();
  const json* sc =
      t->Optional(spec, "securityContext", json::value_t::object, path);
  const json* uid =
      sc ? t->Optional(*sc, "runAsUser", json::value_t::number_integer,
                       path + ".securityContext")
         : nullptr;
  view->runs_as_root = uid != nullptr && uid->get<int64_t>() == 0;
  t->NamedObjects(view->init_containers, path + ".initContainers");
  t->NamedObjects(view->volumes, path + ".volumes");
  t->NamedObjects(view->containers, path + ".containers");
}

// Resources of every container and init container (the QoS class).
void CheckResources(const PodView& view, const std::string& path,
                    TypeChecker* t) {
  for (const auto& [array, field] :
       {std::pair{view.init_containers, ".initContainers"},
        std::pair{view.containers, ".containers"}}) {
    for (size_t i = 0; array != nullptr && i < array->size() && t->ok(); ++i) {
      std::string cp = absl::StrCat(path, field, "[", i, "]");
      const json* res =
          t->Optional((*array)[i], "resources", json::value_t::object, cp);
      if (res == nullptr) continue;
      for (const char* kind : {"requests", "limits"}) {
        t->StringMap(
            t->Optional(*res, kind, json::value_t::object, cp + ".resources"),
            absl::StrCat(cp, ".resources.", kind));
      }
    }
  }
}

// The fields of an app container that container selection and the patch
// read: image, command, args, env, envFrom, volumeMounts.
void CheckContainer(const json& c, const std::string& path, TypeChecker* t) {
  t->Optional(c, "image", json::value_t::string, path);
  t->Optional(c, "command", json::value_t::array, path);
  t->Optional(c, "args", json::value_t::array, path);
  const json* env = t->Optional(c, "env", json::value_t::array, path);
  t->NamedObjects(env, path + ".env", {"value"});
  if (env != nullptr) {
    for (size_t k = 0; k < env->size() && t->ok(); ++k) {
      t->Optional((*env)[k], "valueFrom", json::value_t::object,
                  absl::StrCat(path, ".env[", k, "]"));
    }
  }
  t->Optional(c, "envFrom", json::value_t::array, path);
  const json* mounts =
      t->Optional(c, "volumeMounts", json::value_t::array, path);
  t->NamedObjects(mounts, path + ".volumeMounts", {"mountPath"});
}

// Fills `view` from the pod; the first type mismatch (or an empty
// containers array) as a message, or "" when the pod is usable.
std::string CheckPod(const json& pod, PodView* view) {
  TypeChecker t;
  const std::string root = "request.object";
  view->metadata = t.Optional(pod, "metadata", json::value_t::object, root);
  if (view->metadata != nullptr) {
    CheckMetadata(*view->metadata, root + ".metadata", &t, view);
  }
  view->spec = t.Required(pod, "spec", json::value_t::object, root);
  if (view->spec == nullptr) return t.error();
  const std::string s = root + ".spec";
  CheckPodSpec(*view->spec, s, &t, view);
  CheckResources(*view, s, &t);
  if (view->containers == nullptr) return t.error();
  for (size_t i = 0; i < view->containers->size() && t.ok(); ++i) {
    CheckContainer((*view->containers)[i],
                   absl::StrCat(s, ".containers[", i, "]"), &t);
  }
  if (t.ok() && view->containers->empty()) {
    return s + ".containers: must not be empty";
  }
  return t.error();
}

json EnvLiteral(const std::string& name, const std::string& value) {
  json e = json::object();
  e["name"] = name;
  e["value"] = value;
  return e;
}

json EnvField(const std::string& name, const std::string& field_path) {
  json e = json::object();
  e["name"] = name;
  e["valueFrom"]["fieldRef"]["fieldPath"] = field_path;
  return e;
}

// One serialised "add" operation; `value` is already JSON.
std::string AddOpRaw(const std::string& path, absl::string_view value) {
  return absl::StrCat("{\"op\":\"add\",\"path\":", Dump(json(path)),
                      ",\"value\":", value, "}");
}

std::string AddOp(const std::string& path, const json& value) {
  return AddOpRaw(path, Dump(value));
}

// Appends serialised `items` to the array at `path`: one "add .../-" per
// item when the array exists, else one "add" creating it. Never replaces
// the user's array.
void AppendAll(const json* existing, const std::string& path,
               const std::vector<std::string>& items,
               std::vector<std::string>* ops) {
  if (items.empty()) return;
  if (existing == nullptr) {
    ops->push_back(
        AddOpRaw(path, absl::StrCat("[", absl::StrJoin(items, ","), "]")));
    return;
  }
  for (const std::string& item : items) {
    ops->push_back(AddOpRaw(path + "/-", item));
  }
}

bool HasName(const json* array, const std::string& name) {
  if (array == nullptr) return false;
  for (const json& e : *array) {
    if (StringOr(Member(e, "name")) == name) return true;
  }
  return false;
}

// The probe settings a pod may set by annotation: annotation suffix, env
// variable, range (booleans are [0, 1] and also accept true/false).
struct ProbeSetting {
  const char* annotation;
  const char* env;
  int64_t min;
  int64_t max;
  bool boolean;
};
constexpr ProbeSetting kProbeSettings[] = {
    {"start-step", "VLLM_PROFILER_START_STEP", 1, 1000000000, false},
    {"steps", "VLLM_PROFILER_NUM_STEPS", 1, 1000000, false},
    {"duration-ms", "VLLM_PROFILER_DURATION_MS", 0, 86400000, false},
    {"record-shapes", "VLLM_PROFILER_RECORD_SHAPES", 0, 1, true},
    {"gpu", "VLLM_PROFILER_GPU", 0, 1, true},
};

// A pod's QoS class, as the kubelet computes it (GetPodQOS): only cpu and
// memory count, summed over init and regular containers.
enum class Qos { kBestEffort = 0, kBurstable = 1, kGuaranteed = 2 };
constexpr int kNumQos = 3;

const char* QosName(Qos q) {
  switch (q) {
    case Qos::kBestEffort:
      return "BestEffort";
    case Qos::kBurstable:
      return "Burstable";
    case Qos::kGuaranteed:
      return "Guaranteed";
  }
  return "Burstable";
}

Qos PodQos(const json* init_containers, const json* containers) {
  static constexpr const char* kCompute[] = {"cpu", "memory"};
  std::map<std::string, long double> requests, limits;
  bool guaranteed = true;
  // A positive quantity at resources.<kind>.<name>, else 0 (an invalid one
  // is left to the API server's validation, which rejects the pod).
  auto quantity = [](const json& c, const char* kind, const char* name) {
    const json* res = Member(c, "resources");
    const json* m = res ? Member(*res, kind) : nullptr;
    const json* q = m ? Member(*m, name) : nullptr;
    if (q == nullptr) return 0.0L;
    return ParseQuantity(q->get_ref<const std::string&>()).value_or(0.0L);
  };
  for (const json* array : {init_containers, containers}) {
    if (array == nullptr) continue;
    for (const json& c : *array) {
      int limits_found = 0;
      for (const char* name : kCompute) {
        if (long double q = quantity(c, "requests", name); q > 0) {
          requests[name] += q;
        }
        if (long double q = quantity(c, "limits", name); q > 0) {
          limits[name] += q;
          ++limits_found;
        }
      }
      guaranteed = guaranteed && limits_found == 2;
    }
  }
  if (requests.empty() && limits.empty()) return Qos::kBestEffort;
  if (!guaranteed || requests.size() != limits.size()) return Qos::kBurstable;
  for (const auto& [name, request] : requests) {
    auto it = limits.find(name);
    // Relative: a long double carries the sums of decimal quantities to
    // about 18 digits.
    if (it == limits.end() ||
        std::fabs(it->second - request) > 1e-12L * it->second) {
      return Qos::kBurstable;
    }
  }
  return Qos::kGuaranteed;
}

// The injected containers' resources keep the pod's QoS class: Guaranteed
// pods get requests equal to the limits, BestEffort pods get none.
json Resources(const ContainerResources& r, Qos qos) {
  json j = json::object();
  if (qos == Qos::kBestEffort) return j;
  const bool guaranteed = qos == Qos::kGuaranteed;
  j["requests"]["cpu"] = guaranteed ? r.cpu_limit : r.cpu_request;
  j["requests"]["memory"] = guaranteed ? r.memory_limit : r.memory_request;
  j["limits"]["cpu"] = r.cpu_limit;
  j["limits"]["memory"] = r.memory_limit;
  return j;
}

// Pod Security Standards "restricted" for every injected container. No
// runAsUser unless one is given: the pod's, the platform's (OpenShift) or
// the image's numeric non-root USER applies.
json RestrictedSecurityContext(std::optional<int64_t> uid) {
  json j = json::object();
  j["runAsNonRoot"] = true;
  if (uid.has_value()) {
    j["runAsUser"] = *uid;
    j["runAsGroup"] = *uid;
  }
  j["allowPrivilegeEscalation"] = false;
  j["readOnlyRootFilesystem"] = true;
  j["capabilities"]["drop"] = json::array({"ALL"});
  j["seccompProfile"]["type"] = "RuntimeDefault";
  return j;
}

json Mount(const char* name, const std::string& path, bool read_only) {
  json m = json::object();
  m["name"] = name;
  m["mountPath"] = path;
  if (read_only) m["readOnly"] = true;
  return m;
}

json EmptyDir(const char* name, const std::string& size_limit) {
  json v = json::object();
  v["name"] = name;
  v["emptyDir"]["sizeLimit"] = size_limit;
  return v;
}

std::string TrimSlash(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// --- Which containers (default: those that name vLLM). ---

bool NamesVllm(const json& c) {
  auto has = [](const json& v) {
    return v.is_string() &&
           absl::StrContains(
               absl::AsciiStrToLower(v.get_ref<const std::string&>()), "vllm");
  };
  if (const json* image = Member(c, "image"); image && has(*image)) {
    return true;
  }
  for (const char* field : {"command", "args"}) {
    const json* a = Member(c, field);
    if (a == nullptr) continue;
    for (const json& e : *a) {
      if (has(e)) return true;
    }
  }
  return false;
}

struct Selection {
  std::vector<size_t> targets;  // Indexes into spec.containers, ascending.
  // Containers not targeted, with the reason (status annotation).
  std::vector<std::pair<std::string, std::string>> skipped;
};

// The containers annotation, else the containers whose image, command or
// args name vLLM, else kubectl's default container, else the first one.
Selection SelectContainers(const PodView& pod,
                           std::vector<std::string>* warnings) {
  const json& cs = *pod.containers;
  auto name = [&cs](size_t i) { return StringOr(Member(cs[i], "name")); };
  std::vector<bool> chosen(cs.size(), false);
  std::string why_not;
  if (std::optional<std::string> names =
          pod.Annotation(kContainersAnnotation)) {
    why_not = absl::StrCat("not named in ", kContainersAnnotation);
    for (absl::string_view n : absl::StrSplit(*names, ',')) {
      n = absl::StripAsciiWhitespace(n);
      if (n.empty()) continue;
      bool found = false;
      for (size_t i = 0; i < cs.size(); ++i) {
        if (name(i) == n) found = chosen[i] = true;
      }
      if (!found) {
        warnings->push_back(absl::StrCat(kWarningPrefix, "annotation ",
                                         kContainersAnnotation, " names ",
                                         Quote(n),
                                         ", which is not a container "
                                         "of this pod"));
      }
    }
  } else {
    bool any = false;
    for (size_t i = 0; i < cs.size(); ++i) {
      any = (chosen[i] = NamesVllm(cs[i])) || any;
    }
    if (any) {
      why_not = "its image, command and args do not name vLLM";
    } else {
      size_t pick = 0;
      why_not = "no container names vLLM and it is not the first container";
      if (std::optional<std::string> d =
              pod.Annotation(kDefaultContainerAnnotation)) {
        for (size_t i = 0; i < cs.size(); ++i) {
          if (name(i) == *d) {
            pick = i;
            why_not = absl::StrCat("no container names vLLM and it is not the ",
                                   kDefaultContainerAnnotation);
            break;
          }
        }
      }
      chosen[pick] = true;
    }
  }
  Selection sel;
  for (size_t i = 0; i < cs.size(); ++i) {
    if (chosen[i]) {
      sel.targets.push_back(i);
    } else {
      sel.skipped.emplace_back(name(i), why_not);
    }
  }
  return sel;
}

// --- How Python loads the probe. ---

enum class Hook { kAuto, kPythonPath, kUserCustomize };

Hook RequestedHook(const PodView& pod, std::vector<std::string>* warnings) {
  std::optional<std::string> v = pod.Annotation(kPythonHookAnnotation);
  if (!v.has_value() || *v == "auto") return Hook::kAuto;
  if (*v == "pythonpath") return Hook::kPythonPath;
  if (*v == "usercustomize") return Hook::kUserCustomize;
  warnings->push_back(absl::StrCat(
      kWarningPrefix, "annotation ", kPythonHookAnnotation, ": ", Quote(*v),
      " is not one of auto, pythonpath, usercustomize; auto is used"));
  return Hook::kAuto;
}

std::optional<std::string> ImagePythonPath(const PodView& pod,
                                           std::vector<std::string>* warnings) {
  std::optional<std::string> v = pod.Annotation(kImagePythonPathAnnotation);
  if (!v.has_value()) return std::nullopt;
  bool control = false;
  for (char c : *v) control = control || absl::ascii_iscntrl(c);
  if (v->empty() || control) {
    warnings->push_back(
        absl::StrCat(kWarningPrefix, "annotation ", kImagePythonPathAnnotation,
                     ": ", Quote(*v),
                     " is not a search path (empty or control characters); "
                     "ignored"));
    return std::nullopt;
  }
  return v;
}

// One container's env as the hook needs it.
struct ContainerEnv {
  const json* env = nullptr;
  std::set<std::string> names;
  int path_index = -1;  // Of inject_env_name (PYTHONPATH).
  bool env_from = false;
};

// The Python hook of one container: which, and the env changes; or why the
// container cannot get one (hook == nullptr).
struct HookPlan {
  const char* hook = nullptr;
  std::string skip_reason;
  // A new value for the existing PYTHONPATH entry (env[path_index].value).
  std::optional<std::string> path_value;
  std::vector<std::string> new_env;
};

// pythonpath: the probe folder first in PYTHONPATH, where Python imports our
// sitecustomize. It replaces the image's PYTHONPATH when the spec has none
// (the webhook cannot read image ENV), so auto uses it only when the spec
// sets PYTHONPATH or the pod gives the image's value by annotation.
// usercustomize: PYTHONUSERBASE=<probe folder>, whose
// lib/python3.X/site-packages/usercustomize.py Python imports when the user
// site is enabled; PYTHONPATH is left alone.
HookPlan PlanHook(const ContainerEnv& e, Hook requested,
                  const std::optional<std::string>& image_path,
                  const InjectionConfig& config) {
  const std::string& dir = config.inject_env_value;
  const std::string& var = config.inject_env_name;
  const json* path_entry =
      e.path_index >= 0 ? &(*e.env)[e.path_index] : nullptr;
  const bool path_from_ref =
      path_entry != nullptr && Member(*path_entry, "valueFrom") != nullptr;
  Hook hook = requested;
  if (hook == Hook::kAuto) {
    hook = (path_entry != nullptr && !path_from_ref) || image_path.has_value()
               ? Hook::kPythonPath
               : Hook::kUserCustomize;
  }
  HookPlan plan;
  if (hook == Hook::kUserCustomize) {
    static constexpr std::pair<const char*, const char*> kBlockers[] = {
        {"PYTHONUSERBASE", "which the usercustomize hook would replace"},
        {"PYTHONNOUSERSITE", "which disables the usercustomize hook"}};
    for (const auto& [blocker, why] : kBlockers) {
      if (e.names.count(blocker) != 0) {
        plan.skip_reason =
            absl::StrCat("sets ", blocker, ", ", why, "; annotate ",
                         kPythonHookAnnotation, ": pythonpath");
        return plan;
      }
    }
    plan.hook = "usercustomize";
    plan.new_env.push_back(Dump(EnvLiteral("PYTHONUSERBASE", dir)));
    return plan;
  }
  plan.hook = "pythonpath";
  if (path_entry == nullptr) {
    // A PYTHONPATH from envFrom is kept through $(VAR) expansion; an
    // undefined reference stays literal, which Python ignores as a missing
    // folder.
    std::string value = dir;
    if (image_path.has_value()) {
      absl::StrAppend(&value, ":", *image_path);
    } else if (e.env_from) {
      absl::StrAppend(&value, ":$(", var, ")");
    }
    plan.new_env.push_back(Dump(EnvLiteral(var, value)));
    return plan;
  }
  if (path_from_ref) {
    plan.hook = nullptr;
    plan.skip_reason = absl::StrCat(
        "sets ", var, " with valueFrom, which cannot be prepended to");
    return plan;
  }
  std::string old = StringOr(Member(*path_entry, "value"));
  bool present = false;
  for (absl::string_view part : absl::StrSplit(old, ':')) {
    present = present || TrimSlash(std::string(part)) == dir;
  }
  if (!present)
    plan.path_value = old.empty() ? dir : absl::StrCat(dir, ":", old);
  return plan;
}

AdmissionResult BadRequest(std::string reason, std::string message) {
  AdmissionResult r;
  r.http_status = 400;
  r.content_type = "text/plain; charset=utf-8";
  r.outcome = Outcome::kBadRequest;
  r.reason = std::move(reason);
  r.body = absl::StrCat("invalid AdmissionReview: ", message, "\n");
  return r;
}

// Fills r->body with the AdmissionReview response. Written by hand rather
// than through nlohmann::json: the base64 patch is most of the bytes and
// needs no escaping, and the serializer's UTF-8 checking of every byte was
// a fifth of the request's CPU time.
void Respond(AdmissionResult* r) {
  std::string& out = r->body;
  out.clear();
  out.reserve(160 + r->patch.size() * 4 / 3);
  absl::StrAppend(&out, "{\"apiVersion\":\"", kApiVersion,
                  "\",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":",
                  Dump(json(r->uid)), ",\"allowed\":true");
  if (!r->patch.empty()) {
    absl::StrAppend(&out, ",\"patchType\":\"JSONPatch\",\"patch\":\"",
                    absl::Base64Escape(r->patch), "\"");
  }
  if (!r->warnings.empty()) {
    absl::StrAppend(&out, ",\"warnings\":", Dump(json(r->warnings)));
  }
  out += "}}";
}

}  // namespace

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kInjected:
      return "injected";
    case Outcome::kSkipped:
      return "skipped";
    case Outcome::kFailOpen:
      return "fail_open";
    case Outcome::kBadRequest:
      return "bad_request";
  }
  return "unknown";
}

std::string EscapeJsonPointer(absl::string_view token) {
  return absl::StrReplaceAll(token, {{"~", "~0"}, {"/", "~1"}});
}

struct Admitter::Fragments {
  // What a pod's injected parts depend on besides the configuration.
  struct Key {
    bool host_network = false;
    Qos qos = Qos::kBurstable;
    bool runs_as_root = false;
  };
  struct Variant {
    std::vector<std::string> volumes;
    std::string init;
    // The collector without its env; PodPatch() adds the status (kInjectionEnv)
    // before the closing brace.
    std::string collector;
  };
  static size_t Index(const Key& k) {
    return (k.host_network ? 2 * kNumQos : 0) + 2 * static_cast<size_t>(k.qos) +
           (k.runs_as_root ? 1 : 0);
  }
  Variant variant[2 * kNumQos * 2];
  // The probe volume's mount in an application container.
  std::string app_mount;
};

namespace {

Admitter::Fragments::Variant BuildVariant(const InjectionConfig& config,
                                          const Admitter::Fragments::Key& k) {
  const std::string& dir = config.inject_env_value;
  Admitter::Fragments::Variant v;
  v.volumes = {Dump(EmptyDir(kProbeVolume, config.probe_volume_size_limit)),
               Dump(EmptyDir(kTraceVolume, config.trace_volume_size_limit))};
  // A root pod's UID would make runAsNonRoot reject our containers.
  std::optional<int64_t> uid = config.run_as_user;
  if (!uid.has_value() && k.runs_as_root) uid = kImageUser;

  json init = json::object();
  init["name"] = kInitContainer;
  init["image"] = config.probe_image;
  init["imagePullPolicy"] = config.image_pull_policy;
  json cmd = json::array();
  for (const std::string& a : config.probe_init_command) {
    cmd.push_back(absl::StrReplaceAll(a, {{"{dir}", dir}}));
  }
  init["command"] = std::move(cmd);
  init["volumeMounts"] = json::array({Mount(kProbeVolume, dir, false)});
  json init_resources = Resources(config.init_resources, k.qos);
  if (!init_resources.empty()) init["resources"] = std::move(init_resources);
  init["securityContext"] = RestrictedSecurityContext(uid);
  init["terminationMessagePolicy"] = "FallbackToLogsOnError";

  // hostNetwork pods share the node's loopback, and with it every
  // hostNetwork process on the node: the unauthenticated control plane
  // (gRPC) moves to a Unix socket in the pod's volume, and the read-only
  // HTTP side takes a free port (fixed ports would collide between pods;
  // the port file and the start-up log line say which).
  const std::string port_file = dir + "/collector-ports.json";
  const std::string grpc_address =
      k.host_network ? absl::StrCat("unix:", dir, "/", kControlSocket)
                     : absl::StrCat("127.0.0.1:", config.collector_grpc_port);
  const int http_port = k.host_network ? 0 : config.collector_http_port;
  json collector = json::object();
  collector["name"] = kCollectorContainer;
  collector["image"] = config.collector_image;
  collector["imagePullPolicy"] = config.image_pull_policy;
  collector["args"] = json::array({
      absl::StrCat("--probe_socket=", dir, "/collector.sock"),
      absl::StrCat("--grpc_address=", grpc_address),
      absl::StrCat("--http_address=127.0.0.1:", http_port),
      absl::StrCat("--trace_dir=", kTraceDir),
      absl::StrCat("--max_traces=", config.collector_max_traces),
      absl::StrCat("--max_trace_bytes=", config.collector_max_trace_bytes),
      absl::StrCat("--port_file=", port_file),
  });
  if (config.native_sidecar) collector["restartPolicy"] = "Always";
  collector["volumeMounts"] = json::array(
      {Mount(kProbeVolume, dir, false), Mount(kTraceVolume, kTraceDir, false)});
  json probe_cmd = json::array();
  for (const std::string& a : config.collector_readiness_command) {
    probe_cmd.push_back(absl::StrReplaceAll(a, {{"{port_file}", port_file}}));
  }
  collector["readinessProbe"]["exec"]["command"] = std::move(probe_cmd);
  collector["readinessProbe"]["periodSeconds"] = 10;
  collector["readinessProbe"]["timeoutSeconds"] = 2;
  collector["readinessProbe"]["failureThreshold"] = 3;
  json collector_resources = Resources(config.collector_resources, k.qos);
  if (!collector_resources.empty()) {
    collector["resources"] = std::move(collector_resources);
  }
  collector["securityContext"] = RestrictedSecurityContext(uid);
  collector["terminationMessagePolicy"] = "FallbackToLogsOnError";

  v.init = Dump(init);
  v.collector = Dump(collector);
  return v;
}

}  // namespace

Admitter::Admitter(InjectionConfig config) : config_(std::move(config)) {
  auto f = std::make_unique<Fragments>();
  for (bool host_network : {false, true}) {
    for (Qos qos : {Qos::kBestEffort, Qos::kBurstable, Qos::kGuaranteed}) {
      for (bool root : {false, true}) {
        const Fragments::Key key{host_network, qos, root};
        f->variant[Fragments::Index(key)] = BuildVariant(config_, key);
      }
    }
  }
  f->app_mount =
      Dump(Mount(kProbeVolume, config_.inject_env_value, /*read_only=*/true));
  fragments_ = std::move(f);
}

Admitter::~Admitter() = default;

namespace {

// --- Parse: the AdmissionReview envelope. ---

// The request of a well-formed AdmissionReview (kind, apiVersion, request
// with a uid, kind and operation), or nullptr with the 400 in *bad.
const json* ParseRequest(const json& review, AdmissionResult* bad) {
  if (review.is_discarded()) {
    *bad = BadRequest("invalid_json", "body is not valid JSON");
    return nullptr;
  }
  if (!review.is_object()) {
    *bad = BadRequest("not_admission_review",
                      absl::StrCat("body is a JSON ", review.type_name(),
                                   ", expected an AdmissionReview object"));
    return nullptr;
  }
  const json* kind = Member(review, "kind");
  if (kind == nullptr || !kind->is_string() ||
      kind->get_ref<const std::string&>() != "AdmissionReview") {
    *bad = BadRequest(
        "not_admission_review",
        kind != nullptr && kind->is_string()
            ? absl::StrCat("kind is ",
                           Quote(kind->get_ref<const std::string&>()),
                           ", expected \"AdmissionReview\"")
            : "kind is missing or not a string, expected \"AdmissionReview\"");
    return nullptr;
  }
  const json* api = Member(review, "apiVersion");
  if (api == nullptr || !api->is_string() ||
      api->get_ref<const std::string&>() != kApiVersion) {
    *bad = BadRequest(
        "wrong_api_version",
        absl::StrCat(
            "apiVersion ",
            api != nullptr && api->is_string()
                ? absl::StrCat(Quote(api->get_ref<const std::string&>()),
                               " is not supported")
                : std::string("is missing or not a string"),
            ", expected \"", kApiVersion, "\""));
    return nullptr;
  }
  const json* request = Member(review, "request");
  if (request == nullptr || !request->is_object()) {
    *bad = BadRequest("missing_request", "request is missing or not an object");
    return nullptr;
  }
  const json* uid = Member(*request, "uid");
  if (uid == nullptr || !uid->is_string() ||
      uid->get_ref<const std::string&>().empty()) {
    *bad = BadRequest("missing_uid",
                      "request.uid is missing or not a non-empty string");
    return nullptr;
  }
  const json* req_kind = Member(*request, "kind");
  if (req_kind == nullptr || !req_kind->is_object()) {
    *bad =
        BadRequest("missing_kind", "request.kind is missing or not an object");
    return nullptr;
  }
  const json* operation = Member(*request, "operation");
  if (operation == nullptr || !operation->is_string()) {
    *bad = BadRequest("missing_operation",
                      "request.operation is missing or not a string");
    return nullptr;
  }
  return request;
}

// --- Skip reasons: which requests and which pods are left alone. ---

// Requests that are not a pod's CREATE (nullptr: a pod CREATE).
const char* RequestSkipReason(const json& request) {
  const json& kind = *Member(request, "kind");
  if (StringOr(Member(kind, "group"), "") != "" ||
      StringOr(Member(kind, "version")) != "v1" ||
      StringOr(Member(kind, "kind")) != "Pod") {
    return "not_pod";
  }
  if (Member(request, "operation")->get_ref<const std::string&>() != "CREATE") {
    return "not_create";
  }
  if (!StringOr(Member(request, "subResource")).empty()) return "subresource";
  return nullptr;
}

// Why the pod is not injected (nullptr: inject it), in the order the rules
// are documented; *outcome is kSkipped, or kFailOpen where injecting was
// wanted but is not possible. Warnings say what a user can change.
const char* PodSkipReason(const InjectionConfig& config, const PodView& pod,
                          const std::string& ns,
                          std::vector<std::string>* warnings,
                          Outcome* outcome) {
  *outcome = Outcome::kSkipped;
  if (ns.empty()) return "no_namespace";
  if (ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease") {
    return "system_namespace";
  }
  if (ns == config.own_namespace) return "own_namespace";
  bool targeted = config.target_namespaces.size() == 1 &&
                  config.target_namespaces[0] == "*";
  for (const std::string& t : config.target_namespaces) {
    targeted = targeted || t == ns;
  }
  if (!targeted) return "namespace_not_targeted";
  if (pod.Annotation(kMirrorAnnotation).has_value()) return "mirror_pod";
  std::optional<std::string> inject = pod.Annotation(kInjectAnnotation);
  bool opted_in = false;
  if (inject.has_value()) {
    if (*inject == "false") return "opted_out";
    if (*inject == "true") {
      opted_in = true;
    } else {
      warnings->push_back(absl::StrCat(kWarningPrefix, "annotation ",
                                       kInjectAnnotation, ": ", Quote(*inject),
                                       " is not \"true\" or \"false\"; "
                                       "ignored"));
    }
  }
  if (!opted_in) {
    bool matched = false;
    for (const std::string& key : config.target_label_keys) {
      const json* label =
          pod.labels ? Member(*pod.labels, key.c_str()) : nullptr;
      matched = matched ||
                (label != nullptr && label->get_ref<const std::string&>() ==
                                         config.target_label_value);
    }
    if (!matched) return "label_not_matched";
  }
  if (pod.Annotation(kStatusAnnotation).has_value()) return "already_injected";
  if (pod.host_network && pod.Annotation(kHostNetworkAnnotation) !=
                              std::optional<std::string>("true")) {
    warnings->push_back(absl::StrCat(
        kWarningPrefix,
        "hostNetwork pod not injected: the collector would serve on the "
        "node's loopback; annotate ",
        kHostNetworkAnnotation,
        ": \"true\" to inject it with the control plane on a Unix socket"));
    return "host_network";
  }
  if (HasName(pod.volumes, kProbeVolume) ||
      HasName(pod.volumes, kTraceVolume) ||
      HasName(pod.init_containers, kInitContainer) ||
      HasName(pod.init_containers, kCollectorContainer) ||
      HasName(pod.containers, kInitContainer) ||
      HasName(pod.containers, kCollectorContainer)) {
    warnings->push_back(absl::StrCat(
        kWarningPrefix, "the pod already has a volume or container named ",
        kProbeVolume, "*; not injected"));
    *outcome = Outcome::kFailOpen;
    return "name_conflict";
  }
  return nullptr;
}

// --- Per-container ops. ---

// The probe's settings from the pod's annotations, as env (name, value),
// validated once for all containers; a bad value is a warning and the
// probe's default.
std::vector<std::pair<std::string, std::string>> ProbeEnv(
    const PodView& pod, const std::string& dir,
    std::vector<std::string>* warnings) {
  std::vector<std::pair<std::string, std::string>> env;
  env.emplace_back("VLLM_PROFILER_SOCKET", dir + "/collector.sock");
  for (const ProbeSetting& s : kProbeSettings) {
    const std::string key = absl::StrCat(kAnnotationPrefix, s.annotation);
    std::optional<std::string> v = pod.Annotation(key.c_str());
    if (!v.has_value()) continue;
    std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
    int64_t n = 0;
    if (s.boolean && (lower == "true" || lower == "false")) {
      n = lower == "true" ? 1 : 0;
    } else if (!absl::SimpleAtoi(lower, &n) || n < s.min || n > s.max) {
      warnings->push_back(absl::StrCat(
          kWarningPrefix, "annotation ", key, ": ", Quote(*v), " is not ",
          s.boolean ? "true, false, 0 or 1"
                    : absl::StrCat("an integer in [", s.min, ", ", s.max, "]"),
          "; the probe's default is used"));
      continue;
    }
    env.emplace_back(s.env, absl::StrCat(n));
  }
  return env;
}

// The flight recorder's annotations (flight_annotations.h), parsed once.
FlightSettings Flight(const PodView& pod, std::vector<std::string>* warnings) {
  return ParseFlightAnnotations(
      [&pod](const std::string& suffix) {
        return pod.Annotation(absl::StrCat(kAnnotationPrefix, suffix).c_str());
      },
      warnings);
}

// What is decided for the target containers, and their patch operations.
struct ContainerPlan {
  std::vector<std::string> ops;
  std::vector<std::string> injected;  // Names.
  json hooks = json::object();        // Name -> Python hook.
};

// Plans container `i` of the pod into *plan; a container that cannot be
// injected is added to sel->skipped with a warning.
void PlanContainer(
    size_t i, const PodView& pod, const InjectionConfig& config,
    const std::string& app_mount, Hook requested_hook,
    const std::optional<std::string>& image_path,
    const std::vector<std::pair<std::string, std::string>>& probe_env,
    Selection* sel, ContainerPlan* plan, std::vector<std::string>* warnings) {
  const std::string& dir = config.inject_env_value;
  const json& c = (*pod.containers)[i];
  const std::string cname = StringOr(Member(c, "name"));
  const std::string base = absl::StrCat("/spec/containers/", i);
  const json* mounts = Member(c, "volumeMounts");
  bool mount_conflict = false;
  if (mounts != nullptr) {
    for (const json& m : *mounts) {
      mount_conflict =
          mount_conflict || TrimSlash(StringOr(Member(m, "mountPath"))) == dir;
    }
  }
  if (mount_conflict) {
    warnings->push_back(absl::StrCat(kWarningPrefix, "container ", Quote(cname),
                                     " already mounts a volume at ", dir,
                                     "; not injected"));
    sel->skipped.emplace_back(cname,
                              absl::StrCat("already mounts a volume at ", dir));
    return;
  }
  ContainerEnv e;
  e.env = Member(c, "env");
  e.env_from = Member(c, "envFrom") != nullptr;
  if (e.env != nullptr) {
    for (size_t k = 0; k < e.env->size(); ++k) {
      std::string n = StringOr(Member((*e.env)[k], "name"));
      if (n == config.inject_env_name) e.path_index = static_cast<int>(k);
      e.names.insert(std::move(n));
    }
  }
  HookPlan hook = PlanHook(e, requested_hook, image_path, config);
  if (hook.hook == nullptr) {
    warnings->push_back(absl::StrCat(kWarningPrefix, "container ", Quote(cname),
                                     " ", hook.skip_reason, "; not injected"));
    sel->skipped.emplace_back(cname, std::move(hook.skip_reason));
    return;
  }
  if (hook.path_value.has_value()) {
    plan->ops.push_back(
        AddOp(absl::StrCat(base, "/env/", e.path_index, "/value"),
              json(*hook.path_value)));
  }
  std::vector<std::string>& new_env = hook.new_env;
  for (const auto& [name, value] : probe_env) {
    if (e.names.count(name) == 0) {
      new_env.push_back(Dump(EnvLiteral(name, value)));
    }
  }
  const std::pair<const char*, const char*> kIdentity[] = {
      {"POD_NAME", "metadata.name"},
      {"POD_NAMESPACE", "metadata.namespace"},
      {"NODE_NAME", "spec.nodeName"}};
  for (const auto& [name, field] : kIdentity) {
    if (e.names.count(name) == 0) {
      new_env.push_back(Dump(EnvField(name, field)));
    }
  }
  if (e.names.count("CONTAINER_NAME") == 0) {
    new_env.push_back(Dump(EnvLiteral("CONTAINER_NAME", cname)));
  }
  AppendAll(e.env, base + "/env", new_env, &plan->ops);
  AppendAll(mounts, base + "/volumeMounts", {app_mount}, &plan->ops);
  plan->injected.push_back(cname);
  plan->hooks[cname] = hook.hook;
}

// --- Pod-level ops. ---

// The status annotation (also the collector's kInjectionEnv), serialized.
std::string StatusText(const InjectionConfig& config, const PodView& pod,
                       Qos qos, ContainerPlan* plan, const Selection& sel) {
  json status = json::object();
  status["version"] = kWebhookVersion;
  status["containers"] = plan->injected;
  status["pythonHook"] = std::move(plan->hooks);
  if (!sel.skipped.empty()) {
    json skipped = json::object();
    for (const auto& [name, why] : sel.skipped) skipped[name] = why;
    status["skipped"] = std::move(skipped);
  }
  status["initContainers"] =
      config.native_sidecar ? json::array({kInitContainer, kCollectorContainer})
                            : json::array({kInitContainer});
  status["sidecar"] = config.native_sidecar ? "native" : "container";
  status["volumes"] = json::array({kProbeVolume, kTraceVolume});
  status["qosClass"] = QosName(qos);
  if (pod.host_network) {
    status["controlSocket"] =
        absl::StrCat(config.inject_env_value, "/", kControlSocket);
  }
  return Dump(status);
}

// The whole JSON Patch: volumes, init container, the container ops, the
// collector, annotations.
std::string PodPatch(const InjectionConfig& config,
                     const Admitter::Fragments::Variant& f, const PodView& pod,
                     const std::string& status_text,
                     const std::vector<std::string>& collector_args,
                     std::vector<std::string> container_ops) {
  std::string c = f.collector;
  if (!collector_args.empty()) {
    // Rare (trigger annotations): the shared fragment, with this pod's
    // --trigger_* flags appended.
    json parsed = json::parse(c);
    for (const std::string& a : collector_args) parsed["args"].push_back(a);
    c = Dump(parsed);
  }
  const std::string collector =
      absl::StrCat(absl::string_view(c).substr(0, c.size() - 1), ",\"env\":[",
                   Dump(EnvLiteral(kInjectionEnv, status_text)), "]}");
  std::vector<std::string> ops;
  ops.reserve(container_ops.size() + 8);
  AppendAll(pod.volumes, "/spec/volumes", f.volumes, &ops);
  AppendAll(pod.init_containers, "/spec/initContainers",
            config.native_sidecar ? std::vector<std::string>{f.init, collector}
                                  : std::vector<std::string>{f.init},
            &ops);
  for (std::string& op : container_ops) ops.push_back(std::move(op));
  if (!config.native_sidecar) {
    ops.push_back(AddOpRaw("/spec/containers/-", collector));
  }
  std::vector<std::pair<std::string, std::string>> annotations = {
      {kStatusAnnotation, status_text}};
  if (!pod.Annotation(kDefaultContainerAnnotation).has_value()) {
    annotations.emplace_back(kDefaultContainerAnnotation,
                             StringOr(Member((*pod.containers)[0], "name")));
  }
  if (pod.annotations == nullptr) {
    json all = json::object();
    for (const auto& [k, v] : annotations) all[k] = v;
    ops.push_back(AddOp("/metadata/annotations", all));
  } else {
    for (const auto& [k, v] : annotations) {
      ops.push_back(
          AddOp("/metadata/annotations/" + EscapeJsonPointer(k), json(v)));
    }
  }
  return absl::StrCat("[", absl::StrJoin(ops, ","), "]");
}

AdmissionResult Finish(AdmissionResult r, Outcome outcome, const char* reason) {
  r.outcome = outcome;
  r.reason = reason;
  Respond(&r);
  return r;
}

}  // namespace

// parse -> skip reason -> container selection -> per-container ops ->
// pod-level ops.
AdmissionResult Admitter::Review(absl::string_view body) const {
  const json review = json::parse(body.begin(), body.end(), nullptr,
                                  /*allow_exceptions=*/false);
  AdmissionResult r;
  const json* request = ParseRequest(review, &r);
  if (request == nullptr) return r;
  r.uid = Member(*request, "uid")->get<std::string>();
  if (const char* reason = RequestSkipReason(*request)) {
    return Finish(std::move(r), Outcome::kSkipped, reason);
  }
  const json* object = Member(*request, "object");
  if (object == nullptr || !object->is_object()) {
    return BadRequest("missing_object",
                      "request.object is missing or not an object");
  }
  PodView pod;
  if (std::string err = CheckPod(*object, &pod); !err.empty()) {
    return BadRequest("invalid_pod", err);
  }
  const std::string ns = StringOr(Member(*request, "namespace"), pod.ns);
  r.pod = absl::StrCat(ns, "/",
                       pod.name.empty() ? pod.generate_name + "*" : pod.name);
  Outcome skip_outcome;
  if (const char* reason =
          PodSkipReason(config_, pod, ns, &r.warnings, &skip_outcome)) {
    return Finish(std::move(r), skip_outcome, reason);
  }

  Selection sel = SelectContainers(pod, &r.warnings);
  const Hook requested_hook = RequestedHook(pod, &r.warnings);
  const std::optional<std::string> image_path =
      ImagePythonPath(pod, &r.warnings);
  auto probe_env = ProbeEnv(pod, config_.inject_env_value, &r.warnings);
  const FlightSettings flight = Flight(pod, &r.warnings);
  if (flight.flight_env.has_value()) {
    probe_env.emplace_back("VLLM_PROFILER_FLIGHT", *flight.flight_env);
  }
  ContainerPlan plan;
  for (size_t i : sel.targets) {
    PlanContainer(i, pod, config_, fragments_->app_mount, requested_hook,
                  image_path, probe_env, &sel, &plan, &r.warnings);
  }
  if (plan.injected.empty()) {
    if (sel.targets.empty() && r.warnings.empty()) {
      r.warnings.push_back(
          absl::StrCat(kWarningPrefix, "no container to inject"));
    }
    return Finish(std::move(r), Outcome::kFailOpen, "no_injectable_container");
  }

  const Qos qos = PodQos(pod.init_containers, pod.containers);
  const std::string status_text = StatusText(config_, pod, qos, &plan, sel);
  r.patch =
      PodPatch(config_,
               fragments_->variant[Fragments::Index(
                   {pod.host_network, qos, pod.runs_as_root})],
               pod, status_text, flight.collector_args, std::move(plan.ops));
  return Finish(std::move(r), Outcome::kInjected, "injected");
}

}  // namespace vllm_profiler::webhook
