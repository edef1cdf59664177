#include "webhook/config.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

// Every flag is a string whose empty value means "not given", so the env
// fallback and the default can be applied in one place (LoadConfig) and
// numbers get our error messages rather than absl's.
#define VP_WEBHOOK_FLAG(name, help) ABSL_FLAG(std::string, name, "", help)

VP_WEBHOOK_FLAG(target_namespace,
                "namespaces to inject (comma-separated, * = all)");
VP_WEBHOOK_FLAG(target_label_key,
                "pod label keys that select pods (comma-separated, any "
                "matches)");
VP_WEBHOOK_FLAG(target_label_value, "pod label value that selects pods");
VP_WEBHOOK_FLAG(inject_env_name,
                "variable that gets the probe folder prepended");
VP_WEBHOOK_FLAG(inject_env_value,
                "probe folder (mount path of the shared volume)");
VP_WEBHOOK_FLAG(log_level, "DEBUG, INFO, WARNING or ERROR");
VP_WEBHOOK_FLAG(namespace, "the webhook's own namespace (never injected)");
VP_WEBHOOK_FLAG(probe_image, "image of the probe init container");
VP_WEBHOOK_FLAG(collector_image, "image of the collector sidecar");
VP_WEBHOOK_FLAG(image_pull_policy, "Always, IfNotPresent or Never");
VP_WEBHOOK_FLAG(
    probe_init_command,
    "argv of the probe copy (comma-separated, {dir} = probe folder)");
VP_WEBHOOK_FLAG(collector_readiness_command,
                "argv of the collector's exec readiness probe "
                "(comma-separated, {port_file} = its --port_file)");
VP_WEBHOOK_FLAG(
    sidecar_mode,
    "native (init container, restartPolicy Always; k8s 1.29+) or container");
VP_WEBHOOK_FLAG(run_as_user,
                "uid of the injected containers (empty = the pod's or the "
                "platform's)");
VP_WEBHOOK_FLAG(collector_cpu_request, "collector cpu request");
VP_WEBHOOK_FLAG(collector_memory_request, "collector memory request");
VP_WEBHOOK_FLAG(collector_cpu_limit, "collector cpu limit");
VP_WEBHOOK_FLAG(collector_memory_limit, "collector memory limit");
VP_WEBHOOK_FLAG(init_cpu_request, "probe init container cpu request");
VP_WEBHOOK_FLAG(init_memory_request, "probe init container memory request");
VP_WEBHOOK_FLAG(init_cpu_limit, "probe init container cpu limit");
VP_WEBHOOK_FLAG(init_memory_limit, "probe init container memory limit");
VP_WEBHOOK_FLAG(probe_volume_size_limit, "sizeLimit of the probe emptyDir");
VP_WEBHOOK_FLAG(trace_volume_size_limit,
                "sizeLimit of the collector's trace emptyDir");
VP_WEBHOOK_FLAG(collector_max_trace_bytes, "collector --max_trace_bytes");
VP_WEBHOOK_FLAG(collector_max_traces, "collector --max_traces");
VP_WEBHOOK_FLAG(listen_address,
                "host:port of the HTTPS listener (port 0 = pick one)");
VP_WEBHOOK_FLAG(tls_cert_file,
                "PEM serving certificate (reloaded when it changes)");
VP_WEBHOOK_FLAG(tls_key_file, "PEM private key (reloaded when it changes)");
VP_WEBHOOK_FLAG(max_body_bytes, "largest accepted request body");
VP_WEBHOOK_FLAG(port_file, "write {\"port\":N} here once listening");

namespace vllm_profiler::webhook {
namespace {

struct Setting {
  const char* flag;
  const char* env;
  const char* default_value;
};

// The single table of settings: flag, env fallback, default.
constexpr Setting kSettings[] = {
    {"target_namespace", "TARGET_NAMESPACE", "downstream-llm-d"},
    {"target_label_key", "TARGET_LABEL_KEY",
     "llm-d.ai/inference-serving,llm-d.ai/inferenceServing"},
    {"target_label_value", "TARGET_LABEL_VALUE", "true"},
    {"inject_env_name", "INJECT_ENV_NAME", "PYTHONPATH"},
    {"inject_env_value", "INJECT_ENV_VALUE", "/home/vllm/profiler"},
    {"log_level", "LOG_LEVEL", "DEBUG"},
    {"namespace", "POD_NAMESPACE", "vllm-profiler"},
    {"probe_image", "PROBE_IMAGE", "vllm-profiler/probe:latest"},
    {"collector_image", "COLLECTOR_IMAGE", "vllm-profiler/collector:latest"},
    {"image_pull_policy", "IMAGE_PULL_POLICY", "IfNotPresent"},
    {"probe_init_command", "PROBE_INIT_COMMAND",
     "/bin/cp,-R,/opt/vllm-profiler/probe/.,{dir}/"},
    {"collector_readiness_command", "COLLECTOR_READINESS_COMMAND",
     "/usr/local/bin/collector,--healthcheck,--port_file={port_file}"},
    {"sidecar_mode", "SIDECAR_MODE", "native"},
    {"run_as_user", "INJECT_RUN_AS_USER", ""},
    {"collector_cpu_request", "COLLECTOR_CPU_REQUEST", "50m"},
    {"collector_memory_request", "COLLECTOR_MEMORY_REQUEST", "64Mi"},
    {"collector_cpu_limit", "COLLECTOR_CPU_LIMIT", "1"},
    {"collector_memory_limit", "COLLECTOR_MEMORY_LIMIT", "512Mi"},
    {"init_cpu_request", "INIT_CPU_REQUEST", "10m"},
    {"init_memory_request", "INIT_MEMORY_REQUEST", "16Mi"},
    {"init_cpu_limit", "INIT_CPU_LIMIT", "200m"},
    {"init_memory_limit", "INIT_MEMORY_LIMIT", "64Mi"},
    {"probe_volume_size_limit", "PROBE_VOLUME_SIZE_LIMIT", "256Mi"},
    {"trace_volume_size_limit", "TRACE_VOLUME_SIZE_LIMIT", "2Gi"},
    {"collector_max_trace_bytes", "COLLECTOR_MAX_TRACE_BYTES", "1932735283"},
    {"collector_max_traces", "COLLECTOR_MAX_TRACES", "20"},
    {"listen_address", "LISTEN_ADDRESS", "0.0.0.0:8443"},
    {"tls_cert_file", "TLS_CERT_FILE", "/etc/webhook/certs/tls.crt"},
    {"tls_key_file", "TLS_KEY_FILE", "/etc/webhook/certs/tls.key"},
    {"max_body_bytes", "MAX_BODY_BYTES", "3145728"},
    {"port_file", "PORT_FILE", ""},
};

// Resolves settings and formats errors that name flag and env variable.
class Resolver {
 public:
  Resolver(const FlagLookup& flags, const EnvLookup& env)
      : flags_(flags), env_(env) {}

  std::string Get(absl::string_view flag) const {
    const Setting* s = Find(flag);
    if (auto v = flags_(flag); v.has_value() && !v->empty()) return *v;
    if (auto v = env_(s->env); v.has_value() && !v->empty()) return *v;
    return s->default_value;
  }

  absl::Status Error(absl::string_view flag, absl::string_view what) const {
    const Setting* s = Find(flag);
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " (env ", s->env, "): \"", Get(flag), "\" ", what));
  }

  absl::StatusOr<int64_t> Int(absl::string_view flag, int64_t min,
                              int64_t max) const {
    int64_t v = 0;
    if (!absl::SimpleAtoi(Get(flag), &v) || v < min || v > max) {
      return Error(flag,
                   absl::StrCat("is not an integer in [", min, ", ", max, "]"));
    }
    return v;
  }

  absl::StatusOr<std::string> Quantity(absl::string_view flag) const {
    std::string v = Get(flag);
    if (!IsValidQuantity(v)) {
      return Error(flag,
                   "is not a Kubernetes quantity (e.g. 100m, 1, 64Mi, 2Gi)");
    }
    return v;
  }

 private:
  static const Setting* Find(absl::string_view flag) {
    for (const Setting& s : kSettings) {
      if (flag == s.flag) return &s;
    }
    // Only called with names from kSettings: an internal invariant.
    std::abort();
  }

  const FlagLookup& flags_;
  const EnvLookup& env_;
};

bool IsDnsLabel(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) {
      return false;
    }
  }
  return s.front() != '-' && s.back() != '-';
}

// A non-empty name of at most 63 characters [A-Za-z0-9._-], starting and
// ending alphanumeric: a label key's name part, or a label value.
bool IsLabelName(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return absl::ascii_isalnum(name.front()) && absl::ascii_isalnum(name.back());
}

// A label key: optional DNS-subdomain prefix and "/", then a label name.
bool IsLabelKey(absl::string_view key) {
  absl::string_view name = key;
  size_t slash = key.find('/');
  if (slash != absl::string_view::npos) {
    absl::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 253) return false;
    for (absl::string_view part : absl::StrSplit(prefix, '.')) {
      if (!IsDnsLabel(part)) return false;
    }
  }
  return IsLabelName(name);
}

// A label value: empty, or what a label key's name may be.
bool IsLabelValue(absl::string_view v) { return v.empty() || IsLabelName(v); }

bool IsEnvName(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return !absl::ascii_isdigit(s.front());
}

std::vector<std::string> SplitList(absl::string_view s) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

absl::Status ResourcesFrom(const Resolver& r, absl::string_view prefix,
                           ContainerResources* out) {
  auto get = [&](absl::string_view what, std::string* dst) -> absl::Status {
    auto q = r.Quantity(absl::StrCat(prefix, what));
    if (!q.ok()) return q.status();
    *dst = *q;
    return absl::OkStatus();
  };
  absl::Status s = get("_cpu_request", &out->cpu_request);
  if (s.ok()) s = get("_memory_request", &out->memory_request);
  if (s.ok()) s = get("_cpu_limit", &out->cpu_limit);
  if (s.ok()) s = get("_memory_limit", &out->memory_limit);
  return s;
}

// Which pods are injected: namespaces, label keys and the label value.
absl::Status PodSelectionFrom(const Resolver& r, InjectionConfig* inj) {
  inj->target_namespaces = SplitList(r.Get("target_namespace"));
  if (inj->target_namespaces.empty()) {
    return r.Error("target_namespace", "names no namespace");
  }
  for (const std::string& ns : inj->target_namespaces) {
    if (ns == "*" && inj->target_namespaces.size() == 1) continue;
    if (!IsDnsLabel(ns)) {
      return r.Error("target_namespace",
                     absl::StrCat("contains \"", ns,
                                  "\", which is not a namespace name (* "
                                  "alone selects all namespaces)"));
    }
  }
  inj->target_label_keys = SplitList(r.Get("target_label_key"));
  if (inj->target_label_keys.empty()) {
    return r.Error("target_label_key", "names no label key");
  }
  for (const std::string& key : inj->target_label_keys) {
    if (!IsLabelKey(key)) {
      return r.Error("target_label_key",
                     absl::StrCat("contains \"", key,
                                  "\", which is not a valid label key"));
    }
  }
  inj->target_label_value = r.Get("target_label_value");
  if (!IsLabelValue(inj->target_label_value)) {
    return r.Error("target_label_value", "is not a valid label value");
  }
  return absl::OkStatus();
}

// The variable that gets the probe folder prepended, and that folder.
absl::Status ProbeEnvFrom(const Resolver& r, InjectionConfig* inj) {
  inj->inject_env_name = r.Get("inject_env_name");
  if (!IsEnvName(inj->inject_env_name)) {
    return r.Error("inject_env_name", "is not an environment variable name");
  }
  inj->inject_env_value = r.Get("inject_env_value");
  // It is joined to the variable's value with ':'.
  if (inj->inject_env_value.size() < 2 || inj->inject_env_value[0] != '/' ||
      inj->inject_env_value.back() == '/' ||
      inj->inject_env_value.find(':') != std::string::npos) {
    return r.Error("inject_env_value",
                   "must be an absolute folder path without ':' or a "
                   "trailing '/'");
  }
  return absl::OkStatus();
}

absl::Status LogLevelFrom(const Resolver& r, std::string* log_level) {
  *log_level = absl::AsciiStrToUpper(r.Get("log_level"));
  if (*log_level == "WARN") *log_level = "WARNING";
  if (*log_level != "DEBUG" && *log_level != "INFO" &&
      *log_level != "WARNING" && *log_level != "ERROR") {
    return r.Error("log_level", "is not one of DEBUG, INFO, WARNING, ERROR");
  }
  return absl::OkStatus();
}

// The webhook's own namespace (never injected), and how the probe init
// container and the collector sidecar are built.
absl::Status InjectedContainersFrom(const Resolver& r, InjectionConfig* inj) {
  inj->own_namespace = r.Get("namespace");
  if (!IsDnsLabel(inj->own_namespace)) {
    return r.Error("namespace", "is not a namespace name");
  }
  inj->probe_image = r.Get("probe_image");
  inj->collector_image = r.Get("collector_image");
  for (const char* f : {"probe_image", "collector_image"}) {
    std::string v = r.Get(f);
    if (v.find_first_of(" \t\n\"") != std::string::npos) {
      return r.Error(f, "is not an image reference");
    }
  }
  inj->image_pull_policy = r.Get("image_pull_policy");
  if (inj->image_pull_policy != "Always" &&
      inj->image_pull_policy != "IfNotPresent" &&
      inj->image_pull_policy != "Never") {
    return r.Error("image_pull_policy",
                   "is not one of Always, IfNotPresent, Never");
  }
  inj->probe_init_command = SplitList(r.Get("probe_init_command"));
  if (inj->probe_init_command.empty()) {
    return r.Error("probe_init_command", "is empty");
  }
  inj->collector_readiness_command =
      SplitList(r.Get("collector_readiness_command"));
  if (inj->collector_readiness_command.empty()) {
    return r.Error("collector_readiness_command", "is empty");
  }
  const std::string mode = r.Get("sidecar_mode");
  if (mode != "native" && mode != "container") {
    return r.Error("sidecar_mode", "is not one of native, container");
  }
  inj->native_sidecar = mode == "native";
  if (!r.Get("run_as_user").empty()) {
    auto uid = r.Int("run_as_user", 1, 2147483647);
    if (!uid.ok()) return uid.status();
    inj->run_as_user = *uid;
  }
  return absl::OkStatus();
}

// Resources of the injected containers, volume size limits and the
// collector's trace limits.
absl::Status SizesFrom(const Resolver& r, InjectionConfig* inj) {
  absl::Status s = ResourcesFrom(r, "collector", &inj->collector_resources);
  if (!s.ok()) return s;
  s = ResourcesFrom(r, "init", &inj->init_resources);
  if (!s.ok()) return s;
  for (const char* f : {"probe_volume_size_limit", "trace_volume_size_limit"}) {
    auto q = r.Quantity(f);
    if (!q.ok()) return q.status();
  }
  inj->probe_volume_size_limit = r.Get("probe_volume_size_limit");
  inj->trace_volume_size_limit = r.Get("trace_volume_size_limit");
  auto max_bytes =
      r.Int("collector_max_trace_bytes", 1 << 20, int64_t{1} << 50);
  if (!max_bytes.ok()) return max_bytes.status();
  inj->collector_max_trace_bytes = *max_bytes;
  auto max_traces = r.Int("collector_max_traces", 1, 100000);
  if (!max_traces.ok()) return max_traces.status();
  inj->collector_max_traces = static_cast<int>(*max_traces);
  return absl::OkStatus();
}

// The HTTPS listener: address, TLS files, body limit, port file.
absl::Status ServerFrom(const Resolver& r, Config* c) {
  c->listen_address = r.Get("listen_address");
  size_t colon = c->listen_address.rfind(':');
  int64_t port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(c->listen_address).substr(colon + 1),
                        &port) ||
      port < 0 || port > 65535) {
    return r.Error("listen_address", "is not host:port (port 0-65535)");
  }
  c->tls_cert_file = r.Get("tls_cert_file");
  c->tls_key_file = r.Get("tls_key_file");
  auto body = r.Int("max_body_bytes", 1024, int64_t{64} << 20);
  if (!body.ok()) return body.status();
  c->max_body_bytes = *body;
  c->port_file = r.Get("port_file");
  return absl::OkStatus();
}

}  // namespace

std::optional<long double> ParseQuantity(absl::string_view q) {
  // <number><suffix>: number is digits with at most one '.', suffix one of
  // the binary/decimal SI suffixes or an exponent.
  size_t i = 0;
  bool digits = false, dot = false;
  for (; i < q.size(); ++i) {
    if (absl::ascii_isdigit(q[i])) {
      digits = true;
    } else if (q[i] == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return std::nullopt;
  long double number =
      std::strtold(std::string(q.substr(0, i)).c_str(), nullptr);
  absl::string_view suffix = q.substr(i);
  static constexpr struct {
    absl::string_view suffix;
    long double factor;
  } kSuffixes[] = {{"", 1},
                   {"m", 1e-3L},
                   {"k", 1e3L},
                   {"M", 1e6L},
                   {"G", 1e9L},
                   {"T", 1e12L},
                   {"P", 1e15L},
                   {"E", 1e18L},
                   {"Ki", 1024.0L},
                   {"Mi", 1048576.0L},
                   {"Gi", 1073741824.0L},
                   {"Ti", 1099511627776.0L},
                   {"Pi", 1125899906842624.0L},
                   {"Ei", 1152921504606846976.0L}};
  for (const auto& s : kSuffixes) {
    if (suffix == s.suffix) return number * s.factor;
  }
  if (suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    int exponent = 0;
    for (char c : suffix.substr(1)) {
      if (!absl::ascii_isdigit(c) || exponent > 100) return std::nullopt;
      exponent = exponent * 10 + (c - '0');
    }
    return number * std::pow(10.0L, exponent);
  }
  return std::nullopt;
}

bool IsValidQuantity(absl::string_view q) {
  return ParseQuantity(q).has_value();
}

absl::StatusOr<Config> LoadConfig(const FlagLookup& flags,
                                  const EnvLookup& env) {
  Resolver r(flags, env);
  Config c;
  // In the order of the checks: the first bad setting is the one reported.
  absl::Status s = PodSelectionFrom(r, &c.injection);
  if (s.ok()) s = ProbeEnvFrom(r, &c.injection);
  if (s.ok()) s = LogLevelFrom(r, &c.log_level);
  if (s.ok()) s = InjectedContainersFrom(r, &c.injection);
  if (s.ok()) s = SizesFrom(r, &c.injection);
  if (s.ok()) s = ServerFrom(r, &c);
  if (!s.ok()) return s;
  return c;
}

absl::StatusOr<Config> LoadConfigFromFlagsAndEnv() {
  FlagLookup flags = [](absl::string_view name) -> std::optional<std::string> {
    absl::CommandLineFlag* f = absl::FindCommandLineFlag(name);
    if (f == nullptr) return std::nullopt;
    return f->CurrentValue();
  };
  EnvLookup env = [](absl::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  return LoadConfig(flags, env);
}

std::string DescribeSettings() {
  std::string out;
  for (const Setting& s : kSettings) {
    absl::StrAppend(&out, "  --", s.flag, " / ", s.env, " (default \"",
                    s.default_value, "\")\n");
  }
  return out;
}

}  // namespace vllm_profiler::webhook
