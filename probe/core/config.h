// The probe's configuration, read from the VLLM_PROFILER_* environment the
// webhook injects. Names and defaults are a user-facing contract (README's
// table): the window is calls 100..149 unless set.
//
// The environment is untrusted input: a malformed value never stops the
// host. ParseProbeConfig keeps the default for that variable and returns one
// human-readable problem per bad variable, which the probe logs.
#ifndef VLLM_PROFILER_PROBE_CORE_CONFIG_H_
#define VLLM_PROFILER_PROBE_CORE_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vllm_profiler::probe {

// VLLM_PROFILER_FLIGHT: what the always-on flight recorder keeps.
enum class FlightLevel { kOff, kSteps, kGpu };

// Bytes of one ring slot (an upper bound of sizeof(FlightStep), checked in
// step_ring.cc) and the largest ring, for the bounds on the ring's size.
inline constexpr uint64_t kFlightStepBytes = 1664;
inline constexpr uint64_t kMaxFlightSteps = 1u << 20;
// Bounds of the GPU ring (VLLM_PROFILER_FLIGHT_GPU_BYTES) at level gpu.
inline constexpr uint64_t kMinFlightGpuBytes = 64u << 10;
inline constexpr uint64_t kDefaultFlightGpuBytes = 16u << 20;

struct ProbeConfig {
  bool enabled = true;        // VLLM_PROFILER_ENABLED
  uint32_t start_step = 100;  // VLLM_PROFILER_START_STEP (1-based)
  uint32_t num_steps = 50;    // VLLM_PROFILER_NUM_STEPS (0: none)
  uint32_t duration_ms = 0;   // VLLM_PROFILER_DURATION_MS (0: off)
  bool record_shapes = true;  // VLLM_PROFILER_RECORD_SHAPES
  bool gpu = true;            // VLLM_PROFILER_GPU
  std::string socket_path = "/home/vllm/profiler/collector.sock";
  std::string address;                      // VLLM_PROFILER_ADDRESS (host:port)
  uint64_t max_buffer_bytes = 64ull << 20;  // VLLM_PROFILER_MAX_BUFFER_MB
  std::string requested_name;               // VLLM_TORCH_PROFILE
  std::string log_level = "info";           // VLLM_PROFILER_LOG
  // VLLM_PROFILER_CLOCK: "auto" (the TSC times the record path where it is
  // invariant) or "monotonic" (clock_gettime always).
  bool tsc_clock = true;
  // VLLM_PROFILER_FLIGHT=steps|gpu|off. `gpu` also keeps CUPTI kernel,
  // memcpy and memset records (opt-in: it holds CUPTI all the time; needs
  // VLLM_PROFILER_GPU on).
  FlightLevel flight = FlightLevel::kSteps;
  // VLLM_PROFILER_FLIGHT_STEPS: steps the ring keeps; its bytes
  // (steps x sizeof(FlightStep), ~1.6 KiB) must fit the buffer bound.
  uint32_t flight_steps = 1024;
  // VLLM_PROFILER_FLIGHT_GPU_BYTES: the GPU ring's bytes at level gpu, at
  // least 64 KiB; with the step ring it must fit the buffer bound.
  uint64_t flight_gpu_bytes = kDefaultFlightGpuBytes;
  // Identity (downward API and torch.distributed env).
  std::string pod_name, pod_namespace, node_name, container_name;
  int32_t rank = -1, local_rank = -1, world_size = -1;

  // True when the env asks for a step window (num_steps or duration set).
  bool window_enabled() const { return num_steps > 0 || duration_ms > 0; }
  // gRPC target: "unix:<socket>" or the TCP address.
  std::string Target() const;
};

// Reads an environment variable; returns nullptr when unset.
using EnvGetter = std::function<const char*(const char*)>;

// Parses the environment. Never fails: bad values keep their default and add
// one message to `problems`, e.g.
//   "VLLM_PROFILER_START_STEP='abc' is not a non-negative integer; using 100"
ProbeConfig ParseProbeConfig(const EnvGetter& getenv,
                             std::vector<std::string>* problems);

// Parses one unsigned decimal value (surrounding spaces allowed) no larger
// than `max`. INVALID_ARGUMENT with a user-facing message otherwise.
absl::StatusOr<uint64_t> ParseUnsigned(absl::string_view name,
                                       absl::string_view value, uint64_t max);
// "1/0/true/false/yes/no/on/off" (case-insensitive).
absl::StatusOr<bool> ParseBool(absl::string_view name, absl::string_view value);

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_CONFIG_H_
