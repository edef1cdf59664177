// Webhook configuration: absl flags with environment-variable fallbacks
// (TARGET_NAMESPACE, TARGET_LABEL_KEY, TARGET_LABEL_VALUE, INJECT_ENV_NAME,
// INJECT_ENV_VALUE, LOG_LEVEL; deploy/base/deployment.yaml sets them).
//
// Precedence for every setting: a flag given on the command line, else the
// environment variable, else the built-in default. Every value is validated
// once at start; a bad value is an absl::Status naming the flag, the env
// variable and what is expected, and the binary exits with it.
#ifndef VLLM_PROFILER_WEBHOOK_CONFIG_H_
#define VLLM_PROFILER_WEBHOOK_CONFIG_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vllm_profiler::webhook {

// Resource requests and limits of one injected container (Kubernetes
// quantity strings, validated).
struct ContainerResources {
  std::string cpu_request;
  std::string memory_request;
  std::string cpu_limit;
  std::string memory_limit;
};

// What the admission logic needs to decide and to build the patch. Plain
// data; copied into the Admitter at start.
struct InjectionConfig {
  // Namespaces whose pods are considered; "*" alone means every namespace
  // except the system ones and the webhook's own.
  std::vector<std::string> target_namespaces = {"downstream-llm-d"};
  // A pod is selected when any of these labels has target_label_value:
  // llm-d-modelservice labels pods `llm-d.ai/inference-serving` since chart
  // v0.4, earlier charts `llm-d.ai/inferenceServing`.
  std::vector<std::string> target_label_keys = {"llm-d.ai/inference-serving",
                                                "llm-d.ai/inferenceServing"};
  std::string target_label_value = "true";
  // The variable that gets the probe folder prepended, and that folder (also
  // the mount path of the shared volume in every container).
  std::string inject_env_name = "PYTHONPATH";
  std::string inject_env_value = "/home/vllm/profiler";
  // The webhook's own namespace: never injected.
  std::string own_namespace = "vllm-profiler";

  std::string probe_image = "vllm-profiler/probe:latest";
  std::string collector_image = "vllm-profiler/collector:latest";
  std::string image_pull_policy = "IfNotPresent";
  // argv of the init container that copies the probe bundle; "{dir}" is
  // replaced by inject_env_value.
  std::vector<std::string> probe_init_command = {
      "/bin/cp", "-R", "/opt/vllm-profiler/probe/.", "{dir}/"};
  // argv of the collector's exec readiness probe (the collector listens on
  // loopback only, which kubelet's httpGet/grpc probes cannot reach):
  // `collector --healthcheck` calls grpc.health.v1 (collector/healthcheck.h).
  // "{port_file}" is replaced by the collector's --port_file path.
  std::vector<std::string> collector_readiness_command = {
      "/usr/local/bin/collector", "--healthcheck", "--port_file={port_file}"};
  // true: the collector is a native sidecar (init container with
  // restartPolicy: Always, Kubernetes 1.29+); false: a regular container.
  bool native_sidecar = true;
  // runAsUser/runAsGroup of the injected containers. Unset: none is written,
  // so the pod's or the platform's UID applies (OpenShift's restricted SCC
  // assigns one from the namespace's range) and the images' numeric non-root
  // USER otherwise; see kImageUser in admission.h for root pods.
  std::optional<int64_t> run_as_user;
  // Burstable pods get these; Guaranteed pods get requests equal to the
  // limits; BestEffort pods get none (the pod's QoS class never changes).
  ContainerResources collector_resources = {"50m", "64Mi", "1", "512Mi"};
  ContainerResources init_resources = {"10m", "16Mi", "200m", "64Mi"};
  std::string probe_volume_size_limit = "256Mi";
  std::string trace_volume_size_limit = "2Gi";
  // Passed to the collector as --max_trace_bytes (kept below the trace
  // volume's size limit so eviction never triggers).
  int64_t collector_max_trace_bytes = 1932735283;  // 90% of 2Gi
  int collector_max_traces = 20;
  int collector_grpc_port = 9470;
  int collector_http_port = 9471;
};

// Everything main() needs.
struct Config {
  InjectionConfig injection;
  std::string log_level = "DEBUG";  // DEBUG, INFO, WARNING, ERROR
  std::string listen_address = "0.0.0.0:8443";
  std::string tls_cert_file = "/etc/webhook/certs/tls.crt";
  std::string tls_key_file = "/etc/webhook/certs/tls.key";
  int64_t max_body_bytes = 3 * 1024 * 1024;
  // When set, after the listener is up, {"port":N} is written there
  // atomically (tests use port 0 + this).
  std::string port_file;
};

// Returns the value of a setting by its flag name (std::nullopt when the
// flag was not given). Tests pass a map; main() passes the absl flags.
using FlagLookup =
    std::function<std::optional<std::string>(absl::string_view flag)>;
// Returns an environment variable (std::nullopt when unset).
using EnvLookup =
    std::function<std::optional<std::string>(absl::string_view name)>;

// Builds and validates the configuration. Errors name the setting, e.g.
// `--sidecar_mode (env SIDECAR_MODE): "sometimes" is not one of native,
// container`.
absl::StatusOr<Config> LoadConfig(const FlagLookup& flags,
                                  const EnvLookup& env);

// LoadConfig over the process's absl flags (defined in config.cc) and
// getenv().
absl::StatusOr<Config> LoadConfigFromFlagsAndEnv();

// One line per setting: flag, env name, default (for --help text and the
// README).
std::string DescribeSettings();

// Validates a Kubernetes resource quantity ("100m", "1", "1.5", "64Mi",
// "2Gi", "1e3").
bool IsValidQuantity(absl::string_view q);

// The value of a valid quantity ("100m" -> 0.1, "64Mi" -> 67108864), or
// std::nullopt. Precise to the 18 digits a long double holds, which is
// enough to compare a pod's requests with its limits.
std::optional<long double> ParseQuantity(absl::string_view q);

}  // namespace vllm_profiler::webhook

#endif  // VLLM_PROFILER_WEBHOOK_CONFIG_H_
