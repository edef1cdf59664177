// `vpctl run`: profile any command locally, no cluster.
//
// Starts a private collector (Unix socket and trace directory in a fresh
// temporary folder, gRPC/HTTP on loopback port 0, ports read from its
// --port_file), runs COMMAND with the probe's environment
// (PYTHONPATH=<probe dir>:..., VLLM_PROFILER_SOCKET=<socket>, and the window
// settings given), waits for it to exit, waits until the collector has
// finalized every capture, downloads the trace(s) over TraceService, prints
// where they are, how to open them and a short summary, and stops the
// collector.
//
// Exit code: COMMAND's exit code when it failed, else 0, or 1 when no trace
// could be produced. vpctl ignores SIGINT/SIGQUIT while COMMAND runs (the
// child gets them and exits; the trace is still collected).
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_LOCAL_RUN_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_LOCAL_RUN_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vllm_profiler::collector::vpctl {

struct LocalRunOptions {
  std::vector<std::string> command;
  // The collector binary; empty = FindCollector().
  std::string collector;
  // The probe install folder, or the probe_bundle.tar to unpack; empty =
  // FindProbeBundle().
  std::string probe_dir;
  // Where to write the trace; empty = ./<file name the collector chose>.
  // With several traces, they go next to it under their own names.
  std::string output;
  // Extra environment for COMMAND (VLLM_PROFILER_START_STEP=..., ...).
  std::vector<std::pair<std::string, std::string>> env;
  // How long to wait for the collector to finalize after COMMAND exits.
  absl::Duration finalize_timeout = absl::Seconds(60);
  bool print_summary = true;
};

// Runs the whole flow; returns vpctl's exit code. Progress and results go to
// stderr/stdout.
int RunLocal(const LocalRunOptions& options);

// Default locations, relative to the running vpctl binary (its Bazel
// runfiles, then bazel-bin siblings), overridable with $VPCTL_COLLECTOR and
// $VPCTL_PROBE_DIR. NOT_FOUND names the places tried.
absl::StatusOr<std::string> FindCollector();
absl::StatusOr<std::string> FindProbeBundle();

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_LOCAL_RUN_H_
