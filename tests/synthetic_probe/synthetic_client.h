// Drives SyntheticEvents over real ProbeService.Connect streams, one gRPC
// channel and stream per simulated process, each on its own thread: what
// the synthetic_probe binary runs and what collector tests can call
// in-process.
#ifndef VLLM_PROFILER_TESTS_SYNTHETIC_PROBE_SYNTHETIC_CLIENT_H_
#define VLLM_PROFILER_TESTS_SYNTHETIC_PROBE_SYNTHETIC_CLIENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::synthetic_probe {

struct ClientOptions {
  // Unix socket path of the collector's ProbeService; used when `address`
  // is empty.
  std::string socket = "/home/vllm/profiler/collector.sock";
  // host:port over TCP instead.
  std::string address;
  // Concurrent streams, each a process with its own pid (pid_base + i).
  int processes = 1;
  int64_t pid_base = 0;  // 0 = this process's pid.
  // Every process reports pid_base (pids colliding as across containers).
  bool same_pid = false;
  // Hello.process_uid of process i: process_uid_base + i; 0 = not set.
  uint64_t process_uid_base = 0;
  // Events per process.
  uint64_t events = 100000;
  uint32_t batch_events = 2000;
  // Empty: "synthetic-<pid>" per process for window captures (the collector
  // groups them), "synthetic-cmd" for command captures.
  std::string capture_id;
  v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_WINDOW;
  std::string requested_name;
  // Non-zero: cancel the stream after this many events of a process, without
  // CaptureFinished (a probe crashing mid-capture).
  uint64_t disconnect_after_events = 0;
  // Wait for a StartCaptureCommand from the collector and answer it (its
  // capture id, origin COMMAND) instead of starting a window capture.
  bool wait_for_command = false;
  absl::Duration command_timeout = absl::Seconds(60);
  // Reported in CaptureFinished.drops.events_dropped_buffer_full.
  uint64_t dropped = 0;
  // How long to wait for the collector to accept the connection.
  absl::Duration connect_timeout = absl::Seconds(10);
};

struct ProcessResult {
  int64_t pid = 0;
  std::string capture_id;
  uint64_t events_sent = 0;
  uint64_t batches_sent = 0;
  uint32_t max_batch_bytes = 0;  // From the Welcome; 0 if none arrived.
  // The stream's final status (OK for a clean finish and for an intended
  // disconnect).
  absl::Status status;
};

struct RunResult {
  std::vector<ProcessResult> processes;
  // From the first connect to the last stream's end.
  absl::Duration elapsed;
  uint64_t events_sent = 0;
  // The first non-OK process status, else OK.
  absl::Status status;
};

// Runs all processes to completion. Blocks.
RunResult RunSyntheticProbe(const ClientOptions& options);

}  // namespace vllm_profiler::synthetic_probe

#endif  // VLLM_PROFILER_TESTS_SYNTHETIC_PROBE_SYNTHETIC_CLIENT_H_
