#include "collector/vpctl/pods.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector::vpctl {
namespace {

using nlohmann::json;

const json& Field(const json& obj, const char* key) {
  static const json* const kNull = new json();
  if (!obj.is_object()) return *kNull;
  auto it = obj.find(key);
  return it == obj.end() ? *kNull : *it;
}

std::string Str(const json& obj, const char* key) {
  const json& v = Field(obj, key);
  return v.is_string() ? v.get<std::string>() : "";
}

// The collector's container status, in either list (native sidecar or
// plain container); null when it has none yet.
const json* CollectorStatus(const json& status) {
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    const json& statuses = Field(status, list);
    if (!statuses.is_array()) continue;
    for (const json& s : statuses) {
      if (Str(s, "name") == kCollectorContainer) return &s;
    }
  }
  return nullptr;
}

std::string CollectorNotReady(const json& status) {
  const json* c = CollectorStatus(status);
  if (c == nullptr) {
    return absl::StrCat("its ", kCollectorContainer,
                        " container has no status yet");
  }
  const json& ready = Field(*c, "ready");
  if (ready.is_boolean() && ready.get<bool>()) return "";
  std::string why = Str(Field(Field(*c, "state"), "waiting"), "reason");
  if (why.empty() && Field(Field(*c, "state"), "terminated").is_object()) {
    why = "terminated";
  }
  return absl::StrCat("its ", kCollectorContainer, " container is not ready",
                      why.empty() ? "" : absl::StrCat(" (", why, ")"));
}

std::string SkipReason(const json& pod) {
  const json& meta = Field(pod, "metadata");
  if (!Field(meta, "deletionTimestamp").is_null()) return "terminating";
  const json& annotations = Field(meta, "annotations");
  if (Field(annotations, kStatusAnnotation).is_null()) {
    return absl::StrCat("not injected (no ", kStatusAnnotation, " annotation)");
  }
  const json& status = Field(pod, "status");
  const std::string phase = Str(status, "phase");
  if (phase != "Running") {
    return absl::StrCat("not running (phase ",
                        phase.empty() ? "unknown" : phase, ")");
  }
  return CollectorNotReady(status);
}

PodInfo ToPodInfo(const json& pod) {
  const json& meta = Field(pod, "metadata");
  PodInfo p;
  p.name = Str(meta, "name");
  p.ns = Str(meta, "namespace");
  p.node = Str(Field(pod, "spec"), "nodeName");
  const json& labels = Field(meta, "labels");
  const std::string lws = Str(labels, kLwsNameLabel);
  const std::string group = Str(labels, kLwsGroupLabel);
  if (!lws.empty()) p.instance = absl::StrCat(lws, "/", group);
  p.skip_reason = SkipReason(pod);
  return p;
}

}  // namespace

absl::StatusOr<std::vector<PodInfo>> ParsePods(
    const std::string& text, const std::vector<std::string>& wanted) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string kind = Str(doc, "kind");
  std::vector<json> items;
  if (kind == "Pod") {
    items.push_back(doc);
  } else if (Field(doc, "items").is_array()) {
    for (const json& i : Field(doc, "items")) items.push_back(i);
  } else {
    return absl::InvalidArgumentError(
        "kubectl get pods -o json did not answer a pod list");
  }
  const std::set<std::string> want(wanted.begin(), wanted.end());
  std::set<std::string> found;
  std::vector<PodInfo> pods;
  for (const json& item : items) {
    PodInfo p = ToPodInfo(item);
    if (p.name.empty() || !found.insert(p.name).second) continue;
    if (!want.empty() && !want.count(p.name)) continue;
    pods.push_back(std::move(p));
  }
  for (const std::string& name : want) {
    if (!found.count(name)) pods.push_back({name, "", "", "", "not found"});
  }
  std::sort(pods.begin(), pods.end(),
            [](const PodInfo& a, const PodInfo& b) { return a.name < b.name; });
  return pods;
}

}  // namespace vllm_profiler::collector::vpctl
