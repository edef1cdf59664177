// The admission logic of the webhook, pure (no I/O, no clock, no globals):
// an AdmissionReview (admission.k8s.io/v1) body in, the HTTP status and body
// to answer with out, plus what the caller needs for logs and metrics.
//
// Untrusted input: the body is parsed with nlohmann::json in its non-throwing
// mode and every field is type-checked before use, so no input can throw or
// crash. Malformed reviews get HTTP 400 with a message naming the field; a
// well-formed review the webhook does not act on gets `allowed: true` and no
// patch; anything understood but not handleable gets `allowed: true` with a
// warning (fail-open: the profiler never blocks a pod).
//
// Thread-safety: Admitter is immutable after construction; Review() may be
// called from any number of threads at once.
#ifndef VLLM_PROFILER_WEBHOOK_ADMISSION_H_
#define VLLM_PROFILER_WEBHOOK_ADMISSION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "webhook/config.h"

namespace vllm_profiler::webhook {

// Names the webhook gives to what it injects (also how it recognises an
// already injected pod).
inline constexpr char kAnnotationPrefix[] = "vllm-profiler.llm-d.ai/";
inline constexpr char kStatusAnnotation[] = "vllm-profiler.llm-d.ai/status";
inline constexpr char kInjectAnnotation[] = "vllm-profiler.llm-d.ai/inject";
inline constexpr char kContainersAnnotation[] =
    "vllm-profiler.llm-d.ai/containers";
// auto (default) | pythonpath | usercustomize: how Python loads the probe.
inline constexpr char kPythonHookAnnotation[] =
    "vllm-profiler.llm-d.ai/python-hook";
// The image's own PYTHONPATH, which the webhook cannot read: when given, the
// pythonpath hook keeps it after the probe folder.
inline constexpr char kImagePythonPathAnnotation[] =
    "vllm-profiler.llm-d.ai/image-pythonpath";
// "true": inject a hostNetwork pod (skipped otherwise); its collector then
// serves gRPC on a Unix socket only.
inline constexpr char kHostNetworkAnnotation[] =
    "vllm-profiler.llm-d.ai/host-network";
inline constexpr char kDefaultContainerAnnotation[] =
    "kubectl.kubernetes.io/default-container";
inline constexpr char kMirrorAnnotation[] = "kubernetes.io/config.mirror";
inline constexpr char kProbeVolume[] = "vllm-profiler";
inline constexpr char kTraceVolume[] = "vllm-profiler-traces";
inline constexpr char kTraceDir[] = "/var/lib/vllm-profiler/traces";
inline constexpr char kInitContainer[] = "vllm-profiler-probe-init";
inline constexpr char kCollectorContainer[] = "vllm-profiler-collector";
inline constexpr char kWebhookVersion[] = "0.1.0";
// The collector's copy of the status annotation (vpctl status shows it).
inline constexpr char kInjectionEnv[] = "VLLM_PROFILER_INJECTION";
// The collector's gRPC control socket in the probe folder (hostNetwork pods).
inline constexpr char kControlSocket[] = "collector-control.sock";
// The numeric USER of our images; written as runAsUser only for pods that
// run as root (runAsNonRoot would reject our containers otherwise).
inline constexpr int64_t kImageUser = 65532;

// How a review ended, for metrics and logs.
enum class Outcome {
  kInjected,    // allowed with a non-empty patch
  kSkipped,     // allowed, no patch, by rule (reason says which)
  kFailOpen,    // allowed, no patch, with a warning: could not handle
  kBadRequest,  // HTTP 400: not a valid AdmissionReview
};

const char* OutcomeName(Outcome outcome);

struct AdmissionResult {
  int http_status = 200;
  // application/json AdmissionReview for 200, a one-line text/plain message
  // for 400.
  std::string body;
  std::string content_type = "application/json";
  Outcome outcome = Outcome::kSkipped;
  // Metric label: the skip, fail-open or bad-request reason
  // ("label_not_matched", "invalid_json", ...); "injected" when injected.
  std::string reason;
  // For logs: request uid and "namespace/name" (name or generateName*).
  std::string uid;
  std::string pod;
  // Warnings returned to the API client (kubectl prints them).
  std::vector<std::string> warnings;
  // The decoded JSON Patch (empty when none), for logs and tests.
  std::string patch;
};

// Decides and builds the patch. See the file comment.
class Admitter {
 public:
  explicit Admitter(InjectionConfig config);
  ~Admitter();
  Admitter(const Admitter&) = delete;
  Admitter& operator=(const Admitter&) = delete;

  AdmissionResult Review(absl::string_view body) const;

  const InjectionConfig& config() const { return config_; }

  // The injected volumes and containers depend only on the configuration,
  // hostNetwork, the pod's QoS class and whether it runs as root: serialised
  // once at construction, copied into each patch. Defined in admission.cc.
  struct Fragments;

 private:
  const InjectionConfig config_;
  std::unique_ptr<const Fragments> fragments_;
};

// Escapes one JSON Pointer reference token (RFC 6901: "~" -> "~0",
// "/" -> "~1").
std::string EscapeJsonPointer(absl::string_view token);

}  // namespace vllm_profiler::webhook

#endif  // VLLM_PROFILER_WEBHOOK_ADMISSION_H_
