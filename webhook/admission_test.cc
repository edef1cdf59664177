#include "webhook/admission.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::webhook {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

json Pod(json labels = {{"llm-d.ai/inferenceServing", "true"}}) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", "vllm-0"},
        {"namespace", "downstream-llm-d"},
        {"labels", labels}}},
      {"spec",
       {{"containers", json::array({{{"name", "vllm"}, {"image", "vllm"}}})}}}};
  return pod;
}

json Review(json pod, std::string op = "CREATE") {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "u-1"},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"operation", op},
            {"namespace", "downstream-llm-d"},
            {"object", pod}}}};
}

// The response object of a 200 answer, with the patch decoded.
json Response(const AdmissionResult& r) {
  EXPECT_EQ(r.http_status, 200) << r.body;
  json review = json::parse(r.body);
  json resp = review["response"];
  if (resp.contains("patch")) {
    std::string raw;
    EXPECT_TRUE(absl::Base64Unescape(resp["patch"].get<std::string>(), &raw));
    EXPECT_EQ(raw, r.patch);
    resp["patch"] = json::parse(raw);
  }
  return resp;
}

class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionResult Run(const json& review) const {
    return admitter_.Review(review.dump());
  }
  Admitter admitter_{InjectionConfig{}};
};

struct BadCase {
  const char* name;
  std::string body;
  const char* reason;
  const char* message;
};

void ExpectBadRequest(const Admitter& admitter, const BadCase& c) {
  AdmissionResult r = admitter.Review(c.body);
  EXPECT_EQ(r.http_status, 400) << c.name;
  EXPECT_EQ(r.outcome, Outcome::kBadRequest) << c.name;
  EXPECT_EQ(r.reason, c.reason) << c.name;
  EXPECT_EQ(r.body, c.message) << c.name;
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8") << c.name;
}

// A review of the default pod, changed by `edit`, as a request body.
template <typename Edit>
std::string ReviewBody(Edit edit) {
  json review = Review(Pod());
  edit(review);
  return review.dump();
}

TEST_F(AdmissionTest, BadReviewGets400WithExactMessage) {
  const BadCase cases[] = {
      {"not json", "{not json", "invalid_json",
       "invalid AdmissionReview: body is not valid JSON\n"},
      {"empty", "", "invalid_json",
       "invalid AdmissionReview: body is not valid JSON\n"},
      {"array", "[1,2]", "not_admission_review",
       "invalid AdmissionReview: body is a JSON array, expected an "
       "AdmissionReview object\n"},
      {"no kind", R"({"apiVersion":"admission.k8s.io/v1"})",
       "not_admission_review",
       "invalid AdmissionReview: kind is missing or not a string, expected "
       "\"AdmissionReview\"\n"},
      {"wrong kind", ReviewBody([](json& r) { r["kind"] = "TokenReview"; }),
       "not_admission_review",
       "invalid AdmissionReview: kind is \"TokenReview\", expected "
       "\"AdmissionReview\"\n"},
      {"wrong apiVersion", ReviewBody([](json& r) {
         r["apiVersion"] = "admission.k8s.io/v1beta1";
       }),
       "wrong_api_version",
       "invalid AdmissionReview: apiVersion \"admission.k8s.io/v1beta1\" is "
       "not supported, expected \"admission.k8s.io/v1\"\n"},
      {"no request",
       R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})",
       "missing_request",
       "invalid AdmissionReview: request is missing or not an object\n"},
      {"no uid", ReviewBody([](json& r) { r["request"].erase("uid"); }),
       "missing_uid",
       "invalid AdmissionReview: request.uid is missing or not a non-empty "
       "string\n"},
      {"no object", ReviewBody([](json& r) { r["request"].erase("object"); }),
       "missing_object",
       "invalid AdmissionReview: request.object is missing or not an "
       "object\n"},
  };
  for (const BadCase& c : cases) ExpectBadRequest(admitter_, c);
}

TEST_F(AdmissionTest, BadPodFieldGets400NamingIt) {
  // Edits of the pod inside the default review.
  auto pod_body = [](auto edit) {
    return ReviewBody([&](json& r) { edit(r["request"]["object"]); });
  };
  const BadCase cases[] = {
      {"env is a string", pod_body([](json& pod) {
         pod["spec"]["containers"][0]["env"] = "PATH=/x";
       }),
       "invalid_pod",
       "invalid AdmissionReview: request.object.spec.containers[0].env: "
       "expected array, got string\n"},
      {"label is a number",
       Review(Pod({{"llm-d.ai/inferenceServing", 1}})).dump(), "invalid_pod",
       "invalid AdmissionReview: "
       "request.object.metadata.labels[\"llm-d.ai/inferenceServing\"]: "
       "expected string, got number\n"},
      {"no spec", pod_body([](json& pod) { pod.erase("spec"); }), "invalid_pod",
       "invalid AdmissionReview: request.object.spec: required object is "
       "missing\n"},
      {"mountPath number", pod_body([](json& pod) {
         pod["spec"]["containers"][0]["volumeMounts"] =
             json::array({{{"name", "a"}, {"mountPath", 7}}});
       }),
       "invalid_pod",
       "invalid AdmissionReview: "
       "request.object.spec.containers[0].volumeMounts[0].mountPath: "
       "expected string, got number\n"},
      {"hostNetwork string",
       pod_body([](json& pod) { pod["spec"]["hostNetwork"] = "yes"; }),
       "invalid_pod",
       "invalid AdmissionReview: request.object.spec.hostNetwork: expected "
       "boolean, got string\n"},
      {"no containers",
       pod_body([](json& pod) { pod["spec"]["containers"] = json::array(); }),
       "invalid_pod",
       "invalid AdmissionReview: request.object.spec.containers: must not be "
       "empty\n"},
      {"env value number", pod_body([](json& pod) {
         pod["spec"]["containers"][0]["env"] =
             json::array({{{"name", "A"}, {"value", 1}}});
       }),
       "invalid_pod",
       "invalid AdmissionReview: request.object.spec.containers[0].env[0]."
       "value: expected string, got number\n"},
  };
  for (const BadCase& c : cases) ExpectBadRequest(admitter_, c);
}

TEST_F(AdmissionTest, OtherKindsAndOperationsAreAllowedWithoutPatch) {
  json cm = Review(Pod());
  cm["request"]["kind"] = {
      {"group", ""}, {"version", "v1"}, {"kind", "ConfigMap"}};
  json update = Review(Pod(), "UPDATE");
  json binding = Review(Pod());
  binding["request"]["subResource"] = "binding";
  for (auto [review, reason] : {std::pair<json, const char*>{cm, "not_pod"},
                                {update, "not_create"},
                                {binding, "subresource"}}) {
    AdmissionResult r = Run(review);
    EXPECT_EQ(r.outcome, Outcome::kSkipped);
    EXPECT_EQ(r.reason, reason);
    EXPECT_EQ(Response(r), json({{"uid", "u-1"}, {"allowed", true}}));
  }
}

TEST_F(AdmissionTest, SkipReasons) {
  auto reason = [&](json review) { return Run(review).reason; };
  json pod = Pod();
  EXPECT_EQ(reason(Review(Pod({{"app", "x"}}))), "label_not_matched");
  EXPECT_EQ(reason(Review(Pod({{"llm-d.ai/inferenceServing", "false"}}))),
            "label_not_matched");
  json sys = Review(pod);
  sys["request"]["namespace"] = "kube-system";
  EXPECT_EQ(reason(sys), "system_namespace");
  json own = Review(pod);
  own["request"]["namespace"] = "vllm-profiler";
  EXPECT_EQ(reason(own), "own_namespace");
  json other = Review(pod);
  other["request"]["namespace"] = "default";
  EXPECT_EQ(reason(other), "namespace_not_targeted");
  json mirror = Review(pod);
  mirror["request"]["object"]["metadata"]["annotations"] = {
      {"kubernetes.io/config.mirror", "x"}};
  EXPECT_EQ(reason(mirror), "mirror_pod");
  json out = Review(pod);
  out["request"]["object"]["metadata"]["annotations"] = {
      {"vllm-profiler.llm-d.ai/inject", "false"}};
  EXPECT_EQ(reason(out), "opted_out");
  json done = Review(pod);
  done["request"]["object"]["metadata"]["annotations"] = {
      {"vllm-profiler.llm-d.ai/status", "{}"}};
  EXPECT_EQ(reason(done), "already_injected");
  EXPECT_EQ(reason(Review(pod)), "injected");
}

TEST_F(AdmissionTest, NamespaceFallsBackToObjectAndStarTargetsAll) {
  json review = Review(Pod());
  review["request"].erase("namespace");
  EXPECT_EQ(Run(review).outcome, Outcome::kInjected);
  review["request"]["object"]["metadata"].erase("namespace");
  EXPECT_EQ(Run(review).reason, "no_namespace");

  InjectionConfig all;
  all.target_namespaces = {"*"};
  Admitter star(all);
  json other = Review(Pod());
  other["request"]["namespace"] = "team-a";
  EXPECT_EQ(star.Review(other.dump()).outcome, Outcome::kInjected);
  other["request"]["namespace"] = "kube-system";
  EXPECT_EQ(star.Review(other.dump()).reason, "system_namespace");
}

TEST_F(AdmissionTest, SeveralTargetNamespaces) {
  InjectionConfig c;
  c.target_namespaces = {"a", "b"};
  Admitter two(c);
  json review = Review(Pod());
  for (const char* ns : {"a", "b"}) {
    review["request"]["namespace"] = ns;
    EXPECT_EQ(two.Review(review.dump()).outcome, Outcome::kInjected) << ns;
  }
  review["request"]["namespace"] = "downstream-llm-d";
  EXPECT_EQ(two.Review(review.dump()).reason, "namespace_not_targeted");
}

TEST_F(AdmissionTest, InvalidInjectAnnotationWarnsAndFallsBackToLabel) {
  json review = Review(Pod({}));
  review["request"]["object"]["metadata"]["annotations"] = {
      {"vllm-profiler.llm-d.ai/inject", "yes"}};
  AdmissionResult r = Run(review);
  EXPECT_EQ(r.reason, "label_not_matched");
  EXPECT_THAT(Response(r)["warnings"],
              ElementsAre("vllm-profiler: annotation "
                          "vllm-profiler.llm-d.ai/inject: \"yes\" is not "
                          "\"true\" or \"false\"; ignored"));
}

TEST_F(AdmissionTest, PythonPathIsPrependedNeverDuplicated) {
  json review = Review(Pod());
  review["request"]["object"]["spec"]["containers"][0]["env"] =
      json::array({{{"name", "PYTHONPATH"}, {"value", "/a:/b"}}});
  json ops = Response(Run(review))["patch"];
  EXPECT_EQ(ops[2], json({{"op", "add"},
                          {"path", "/spec/containers/0/env/0/value"},
                          {"value", "/home/vllm/profiler:/a:/b"}}));
  review["request"]["object"]["spec"]["containers"][0]["env"][0]["value"] =
      "/a:/home/vllm/profiler/";
  const json again = Response(Run(review));
  for (const json& op : again["patch"]) {
    EXPECT_NE(op["path"], "/spec/containers/0/env/0/value");
  }
}

TEST_F(AdmissionTest, ContainerModeAppendsCollectorAsContainer) {
  InjectionConfig c;
  c.native_sidecar = false;
  Admitter legacy(c);
  json resp = Response(legacy.Review(Review(Pod()).dump()));
  const json& ops = resp["patch"];
  const json& last_container_op = ops[ops.size() - 2];
  EXPECT_EQ(last_container_op["path"], "/spec/containers/-");
  EXPECT_EQ(last_container_op["value"]["name"], "vllm-profiler-collector");
  EXPECT_FALSE(last_container_op["value"].contains("restartPolicy"));
  EXPECT_EQ(ops[1]["path"], "/spec/initContainers");
  EXPECT_EQ(ops[1]["value"].size(), 1u);
}

TEST_F(AdmissionTest, HostNetworkIsSkippedUnlessOptedIn) {
  json review = Review(Pod());
  review["request"]["object"]["spec"]["hostNetwork"] = true;
  AdmissionResult skipped = Run(review);
  EXPECT_EQ(skipped.outcome, Outcome::kSkipped);
  EXPECT_EQ(skipped.reason, "host_network");
  EXPECT_THAT(
      Response(skipped)["warnings"],
      ElementsAre("vllm-profiler: hostNetwork pod not injected: the collector "
                  "would serve on the node's loopback; annotate "
                  "vllm-profiler.llm-d.ai/host-network: \"true\" to inject "
                  "it with the control plane on a Unix socket"));

  review["request"]["object"]["metadata"]["annotations"] = {
      {"vllm-profiler.llm-d.ai/host-network", "true"}};
  json args = Response(Run(review))["patch"][1]["value"][1]["args"];
  EXPECT_EQ(args[1],
            "--grpc_address=unix:/home/vllm/profiler/collector-control.sock");
  EXPECT_EQ(args[2], "--http_address=127.0.0.1:0");
}

TEST_F(AdmissionTest, EitherLabelKeySelects) {
  for (const char* key :
       {"llm-d.ai/inference-serving", "llm-d.ai/inferenceServing"}) {
    EXPECT_EQ(Run(Review(Pod({{key, "true"}}))).outcome, Outcome::kInjected)
        << key;
  }
  EXPECT_EQ(Run(Review(Pod({{"llm-d.ai/inference-serving", "false"}}))).reason,
            "label_not_matched");
}

// The injected containers' resources and the pod's QoS class afterwards.
json InjectedResources(const AdmissionResult& r) {
  return Response(r)["patch"][1]["value"][1]["resources"];
}

TEST_F(AdmissionTest, QosClassIsKept) {
  json review = Review(Pod());
  json& c = review["request"]["object"]["spec"]["containers"][0];
  // BestEffort: no resources at all.
  EXPECT_EQ(InjectedResources(Run(review)), json());
  // Guaranteed: requests == limits.
  c["resources"] = {{"requests", {{"cpu", "4"}, {"memory", "16Gi"}}},
                    {"limits", {{"cpu", "4000m"}, {"memory", "16Gi"}}}};
  EXPECT_EQ(InjectedResources(Run(review)),
            json({{"requests", {{"cpu", "1"}, {"memory", "512Mi"}}},
                  {"limits", {{"cpu", "1"}, {"memory", "512Mi"}}}}));
  // Burstable: the configured requests.
  c["resources"]["limits"]["memory"] = "32Gi";
  EXPECT_EQ(InjectedResources(Run(review)),
            json({{"requests", {{"cpu", "50m"}, {"memory", "64Mi"}}},
                  {"limits", {{"cpu", "1"}, {"memory", "512Mi"}}}}));
}

TEST_F(AdmissionTest, RunAsUserOnlyWhenConfiguredOrForRootPods) {
  json review = Review(Pod());
  json sc = Response(Run(review))["patch"][1]["value"][0]["securityContext"];
  EXPECT_EQ(sc["runAsNonRoot"], true);
  EXPECT_FALSE(sc.contains("runAsUser"));
  review["request"]["object"]["spec"]["securityContext"] = {{"runAsUser", 0}};
  sc = Response(Run(review))["patch"][1]["value"][0]["securityContext"];
  EXPECT_EQ(sc["runAsUser"], 65532);
  InjectionConfig config;
  config.run_as_user = 1001;
  Admitter fixed(config);
  sc = Response(fixed.Review(
      Review(Pod()).dump()))["patch"][1]["value"][0]["securityContext"];
  EXPECT_EQ(sc["runAsUser"], 1001);
  EXPECT_EQ(sc["runAsGroup"], 1001);
}

TEST_F(AdmissionTest, BadHookAnnotationsWarn) {
  json review = Review(Pod());
  review["request"]["object"]["metadata"]["annotations"] = {
      {"vllm-profiler.llm-d.ai/python-hook", "site"},
      {"vllm-profiler.llm-d.ai/image-pythonpath", ""}};
  EXPECT_THAT(
      Response(Run(review))["warnings"],
      ElementsAre("vllm-profiler: annotation vllm-profiler.llm-d.ai/"
                  "python-hook: \"site\" is not one of auto, pythonpath, "
                  "usercustomize; auto is used",
                  "vllm-profiler: annotation vllm-profiler.llm-d.ai/"
                  "image-pythonpath: \"\" is not a search path (empty or "
                  "control characters); ignored"));
}

TEST_F(AdmissionTest, NoInjectableContainerFailsOpen) {
  json review = Review(Pod());
  review["request"]["object"]["metadata"]["annotations"] = {
      {"vllm-profiler.llm-d.ai/containers", "nope"}};
  AdmissionResult r = Run(review);
  EXPECT_EQ(r.outcome, Outcome::kFailOpen);
  EXPECT_EQ(r.reason, "no_injectable_container");
  json resp = Response(r);
  EXPECT_FALSE(resp.contains("patch"));
  EXPECT_EQ(resp["allowed"], true);
  EXPECT_THAT(resp["warnings"][0].get<std::string>(),
              HasSubstr("names \"nope\", which is not a container"));
}

TEST_F(AdmissionTest, DryRunGetsTheSameAnswer) {
  json review = Review(Pod());
  AdmissionResult a = Run(review);
  review["request"]["dryRun"] = true;
  AdmissionResult b = Run(review);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.outcome, Outcome::kInjected);
}

TEST_F(AdmissionTest, DeepNestingNeitherCrashesNorOverflows) {
  const std::string deep =
      std::string(1000000, '[') + std::string(1000000, ']');
  AdmissionResult r = admitter_.Review(deep);
  EXPECT_EQ(r.http_status, 400);
  EXPECT_EQ(r.body,
            "invalid AdmissionReview: body is a JSON array, expected an "
            "AdmissionReview object\n");
  json review = Review(Pod());
  std::string body = review.dump();
  const std::string marker = "\"image\":\"vllm\"";
  body.replace(body.find(marker), marker.size(),
               "\"image\":\"vllm\",\"args\":" + deep);
  EXPECT_EQ(admitter_.Review(body).outcome, Outcome::kInjected);
}

TEST_F(AdmissionTest, UserStringsInMessagesAreTruncatedAndEscaped) {
  json review = Review(Pod());
  review["kind"] = "Evil\nline2" + std::string(100, 'x');
  EXPECT_EQ(Run(review).body,
            "invalid AdmissionReview: kind is \"Evil\\nline2" +
                std::string(54, 'x') + "...\", expected \"AdmissionReview\"\n");
}

TEST(EscapeJsonPointerTest, EscapesTildeAndSlash) {
  EXPECT_EQ(EscapeJsonPointer("a/b~c"), "a~1b~0c");
  EXPECT_EQ(EscapeJsonPointer("~1"), "~01");
  EXPECT_EQ(EscapeJsonPointer("plain"), "plain");
}

}  // namespace
}  // namespace vllm_profiler::webhook
