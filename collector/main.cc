// The collector sidecar: receives probe streams, writes Chrome traces,
// serves them over gRPC and HTTP. See collector_server.h and README.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "collector/collector_server.h"
#include "collector/flight_flags.h"
#include "collector/healthcheck.h"
#include "common/logging.h"

ABSL_FLAG(std::string, probe_socket, "/home/vllm/profiler/collector.sock",
          "Unix socket the probes connect to (ProbeService).");
ABSL_FLAG(std::string, probe_tcp_address, "",
          "Optional host:port for probes over TCP; empty = off.");
ABSL_FLAG(std::string, grpc_address, "127.0.0.1:9470",
          "TraceService, grpc.health.v1 and reflection; port 0 picks one.");
ABSL_FLAG(std::string, http_address, "127.0.0.1:9471",
          "HTTP index, downloads, /healthz, /metrics; port 0 picks one.");
ABSL_FLAG(std::string, trace_dir, "/var/lib/vllm-profiler/traces",
          "Where traces are written.");
ABSL_FLAG(uint32_t, max_traces, 20, "Traces kept (oldest deleted first).");
ABSL_FLAG(uint64_t, max_trace_bytes, 4294967296ull,
          "Total bytes of traces kept (oldest deleted first).");
ABSL_FLAG(bool, gzip, false, "Store traces as .json.gz.");
ABSL_FLAG(std::string, port_file, "",
          "When set, {\"grpc_port\":N,\"http_port\":M} is written there "
          "once all listeners are up.");
ABSL_FLAG(int64_t, window_linger_ms, 2000,
          "A window capture is finalized once all its processes finished "
          "and none joined for this long.");
ABSL_FLAG(uint32_t, max_batch_bytes, 4 << 20,
          "Largest event batch a probe may send (told in Welcome).");
ABSL_FLAG(int64_t, probe_eviction_min_age_s, 600,
          "A capture a probe starts on its own is refused when keeping it "
          "would delete a trace younger than this.");
ABSL_FLAG(int32_t, max_probe_streams, 256,
          "Probe streams served at once; more are refused with "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, hello_timeout_ms, 5000,
          "A probe stream that sends no Hello within this long is cancelled.");
ABSL_FLAG(bool, healthcheck, false,
          "Do not serve: exit 0 when the collector whose --port_file is "
          "given answers grpc.health.v1 SERVING within 2 s, else print why "
          "and exit 1 (the sidecar's exec readiness probe).");
// Flight recorder triggers: text, parsed by ParseFlightFlags (clear errors).
ABSL_FLAG(std::string, trigger_slow_step_ms, "0",
          "Flight recorder: a step slower than this (ms) triggers a trace; "
          "0 = off.");
ABSL_FLAG(std::string, trigger_factor, "0",
          "Flight recorder: a step slower than this x its process's rolling "
          "median triggers a trace; > 1, or 0 = off.");
ABSL_FLAG(std::string, trigger_window, "500",
          "Steps in the rolling median (no factor trigger before it is "
          "full).");
ABSL_FLAG(std::string, trigger_on_error, "true",
          "Flight recorder: a step that raised triggers a trace.");
ABSL_FLAG(std::string, trigger_pre_steps, "200",
          "Ring steps of every process before the trigger, in its trace.");
ABSL_FLAG(std::string, trigger_post_steps, "20",
          "Steps captured fully (operators, GPU) after the trigger.");
ABSL_FLAG(std::string, trigger_cooldown, "10m",
          "At most one triggered trace per this long (e.g. 10m, 90s).");
ABSL_FLAG(std::string, log_level, "",
          "debug|info|warning|error|quiet (default: VP_LOG_LEVEL or info).");

namespace {

namespace collector = vllm_profiler::collector;

// --healthcheck: the exit code of the readiness probe.
int HealthCheck() {
  const absl::Status s = collector::CheckCollectorHealth(
      absl::GetFlag(FLAGS_port_file), absl::Seconds(2));
  if (s.ok()) return 0;
  std::fprintf(stderr, "collector --healthcheck: %s\n",
               std::string(s.message()).c_str());
  return 1;
}

// Applies --log_level; false (after saying why) when it is invalid.
bool SetUpLogging() {
  vllm_profiler::SetLogPrefix("collector");
  const std::string level = absl::GetFlag(FLAGS_log_level);
  if (level.empty()) return true;
  vllm_profiler::LogLevel l;
  if (!vllm_profiler::ParseLogLevel(level, &l)) {
    std::fprintf(stderr, "collector: invalid --log_level %s\n", level.c_str());
    return false;
  }
  vllm_profiler::SetMinLogLevel(l);
  return true;
}

// The server's options from the flags (and VLLM_PROFILER_INJECTION); an
// invalid flight recorder flag is an error naming it.
absl::StatusOr<collector::CollectorServer::Options> OptionsFromFlags() {
  collector::CollectorServer::Options o;
  o.probe_socket = absl::GetFlag(FLAGS_probe_socket);
  o.probe_tcp_address = absl::GetFlag(FLAGS_probe_tcp_address);
  o.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  o.http_address = absl::GetFlag(FLAGS_http_address);
  o.store.dir = absl::GetFlag(FLAGS_trace_dir);
  o.store.max_traces = absl::GetFlag(FLAGS_max_traces);
  o.store.max_bytes = absl::GetFlag(FLAGS_max_trace_bytes);
  o.store.gzip = absl::GetFlag(FLAGS_gzip);
  o.port_file = absl::GetFlag(FLAGS_port_file);
  o.window_linger = absl::Milliseconds(absl::GetFlag(FLAGS_window_linger_ms));
  o.stream.max_batch_bytes = absl::GetFlag(FLAGS_max_batch_bytes);
  // The webhook's status annotation, shown by `vpctl status`.
  if (const char* v = std::getenv("VLLM_PROFILER_INJECTION")) o.injection = v;
  o.max_probe_streams = absl::GetFlag(FLAGS_max_probe_streams);
  o.probe_eviction_min_age =
      absl::Seconds(absl::GetFlag(FLAGS_probe_eviction_min_age_s));
  o.hello_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_hello_timeout_ms));

  collector::FlightFlagValues ff;
  ff.slow_step_ms = absl::GetFlag(FLAGS_trigger_slow_step_ms);
  ff.factor = absl::GetFlag(FLAGS_trigger_factor);
  ff.window = absl::GetFlag(FLAGS_trigger_window);
  ff.on_error = absl::GetFlag(FLAGS_trigger_on_error);
  ff.pre_steps = absl::GetFlag(FLAGS_trigger_pre_steps);
  ff.post_steps = absl::GetFlag(FLAGS_trigger_post_steps);
  ff.cooldown = absl::GetFlag(FLAGS_trigger_cooldown);
  auto flight = collector::ParseFlightFlags(ff);
  if (!flight.ok()) return flight.status();
  o.flight = *flight;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vllm-profiler collector: receives probe streams, writes Chrome trace "
      "JSON, serves it over gRPC and HTTP.");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_healthcheck)) return HealthCheck();
  if (!SetUpLogging()) return 2;
  absl::StatusOr<collector::CollectorServer::Options> options =
      OptionsFromFlags();
  if (!options.ok()) {
    std::fprintf(stderr, "collector: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }

  // Handle SIGTERM/SIGINT on this thread only: block them before any
  // other thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A probe that goes away mid-write must not kill us.
  signal(SIGPIPE, SIG_IGN);

  auto server = collector::CollectorServer::Start(*options);
  if (!server.ok()) {
    VP_LOG(ERROR) << "cannot start: " << server.status().message();
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  VP_LOG(INFO) << "signal " << sig << ": shutting down";
  (*server)->Shutdown();
  VP_LOG(INFO) << "bye";
  // Every trace is finalized and fsynced; skip destructors: gRPC's global
  // shutdown can wait ~10 s for its background threads, which would eat
  // into the pod's termination grace period.
  std::fflush(nullptr);
  _exit(0);
}
