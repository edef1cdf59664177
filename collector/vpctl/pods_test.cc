#include "collector/vpctl/pods.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace vllm_profiler::collector::vpctl {
namespace {

using nlohmann::json;

// A pod as the API server lists it after the webhook injected it (native
// sidecar) and the collector became ready.
json InjectedPod(const std::string& name) {
  return {{"metadata",
           {{"name", name},
            {"namespace", "llm"},
            {"labels", {{"app", "vllm"}}},
            {"annotations", {{kStatusAnnotation, "{}"}}}}},
          {"spec", {{"nodeName", "node-" + name}}},
          {"status",
           {{"phase", "Running"},
            {"initContainerStatuses",
             {{{"name", "vllm-profiler-probe-init"}, {"ready", false}},
              {{"name", kCollectorContainer}, {"ready", true}}}}}}};
}

std::vector<PodInfo> Parse(const json& items,
                           const std::vector<std::string>& wanted = {}) {
  absl::StatusOr<std::vector<PodInfo>> pods =
      ParsePods(json{{"kind", "List"}, {"items", items}}.dump(), wanted);
  EXPECT_TRUE(pods.ok()) << pods.status();
  return pods.ok() ? *pods : std::vector<PodInfo>{};
}

TEST(PodsTest, InjectedReadyPodsAreUsableWithNodeAndInstance) {
  json b = InjectedPod("b");
  b["metadata"]["labels"][kLwsNameLabel] = "llama";
  b["metadata"]["labels"][kLwsGroupLabel] = "0";
  json c = InjectedPod("c");  // Sidecar as a plain container (k8s < 1.29).
  c["status"].erase("initContainerStatuses");
  c["status"]["containerStatuses"] = {
      {{"name", "vllm"}, {"ready", true}},
      {{"name", kCollectorContainer}, {"ready", true}}};
  std::vector<PodInfo> pods = Parse({c, b, InjectedPod("a")});
  ASSERT_EQ(pods.size(), 3u);
  EXPECT_EQ(pods[0].name, "a");
  EXPECT_EQ(pods[0].node, "node-a");
  EXPECT_EQ(pods[0].ns, "llm");
  EXPECT_EQ(pods[1].instance, "llama/0");
  for (const PodInfo& p : pods) EXPECT_EQ(p.skip_reason, "") << p.name;
}

TEST(PodsTest, SkippedPodsSayWhy) {
  json plain = InjectedPod("plain");
  plain["metadata"].erase("annotations");
  json pending = InjectedPod("pending");
  pending["status"]["phase"] = "Pending";
  json crashing = InjectedPod("crashing");
  crashing["status"]["initContainerStatuses"][1] = {
      {"name", kCollectorContainer},
      {"ready", false},
      {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}}};
  json fresh = InjectedPod("fresh");
  fresh["status"].erase("initContainerStatuses");
  json leaving = InjectedPod("leaving");
  leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  std::vector<PodInfo> pods = Parse({plain, pending, crashing, fresh, leaving});
  std::map<std::string, std::string> why;
  for (const PodInfo& p : pods) why[p.name] = p.skip_reason;
  EXPECT_EQ(why["plain"],
            "not injected (no vllm-profiler.llm-d.ai/status annotation)");
  EXPECT_EQ(why["pending"], "not running (phase Pending)");
  EXPECT_EQ(why["crashing"],
            "its vllm-profiler-collector container is not ready "
            "(CrashLoopBackOff)");
  EXPECT_EQ(why["fresh"],
            "its vllm-profiler-collector container has no status yet");
  EXPECT_EQ(why["leaving"], "terminating");
}

TEST(PodsTest, WantedNamesFilterAndMissingOnesAreReported) {
  std::vector<PodInfo> pods =
      Parse({InjectedPod("a"), InjectedPod("b")}, {"b", "zz"});
  ASSERT_EQ(pods.size(), 2u);
  EXPECT_EQ(pods[0].name, "b");
  EXPECT_EQ(pods[0].skip_reason, "");
  EXPECT_EQ(pods[1].name, "zz");
  EXPECT_EQ(pods[1].skip_reason, "not found");
}

TEST(PodsTest, NotAPodListIsAnError) {
  EXPECT_EQ(ParsePods("<html>", {}).status().message(),
            "kubectl get pods -o json did not answer a pod list");
  EXPECT_EQ(ParsePods(R"({"kind":"List","items":{}})", {}).status().message(),
            "kubectl get pods -o json did not answer a pod list");
  // A single Pod (kubectl get pod NAME -o json) is a list of one.
  json solo = InjectedPod("solo");
  solo["kind"] = "Pod";
  absl::StatusOr<std::vector<PodInfo>> one = ParsePods(solo.dump(), {});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  // Odd field types make a pod unusable, not a crash.
  absl::StatusOr<std::vector<PodInfo>> odd = ParsePods(
      R"({"items":[{"metadata":{"name":"x","annotations":[]},"status":7},)"
      R"({"metadata":"y"},5]})",
      {});
  ASSERT_TRUE(odd.ok());
  ASSERT_EQ(odd->size(), 1u);
  EXPECT_EQ((*odd)[0].skip_reason,
            "not injected (no vllm-profiler.llm-d.ai/status annotation)");
}

}  // namespace
}  // namespace vllm_profiler::collector::vpctl
