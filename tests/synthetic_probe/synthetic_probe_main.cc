// synthetic_probe: connects to a collector like real probes and streams
// synthetic events of every kind. See synthetic_client.h.
//
//   synthetic_probe --socket=/tmp/c.sock --processes=4 --events=500000
//
// Prints one summary line to stdout and exits 0 when every stream ended
// cleanly, 1 otherwise (with the reason on stderr).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "tests/synthetic_probe/synthetic_client.h"

ABSL_FLAG(std::string, socket, "",
          "Unix socket of the collector's ProbeService (default: "
          "$VLLM_PROFILER_SOCKET, else /home/vllm/profiler/collector.sock, "
          "as the real probe).");
ABSL_FLAG(std::string, address, "",
          "host:port of the collector's ProbeService over TCP (overrides "
          "--socket; default $VLLM_PROFILER_ADDRESS).");
ABSL_FLAG(int, processes, 1, "Concurrent simulated processes (streams).");
ABSL_FLAG(int64_t, pid_base, 0,
          "Fake pid of the first process (others get +1, +2, ...); 0 = this "
          "process's pid.");
ABSL_FLAG(bool, same_pid, false,
          "Every process reports --pid_base (pids colliding as across "
          "containers of a pod).");
ABSL_FLAG(uint64_t, process_uid_base, 0,
          "Hello.process_uid of process i is this + i; 0 = not set.");
ABSL_FLAG(uint64_t, events, 100000, "Events per process.");
ABSL_FLAG(uint32_t, batch_events, 2000, "Events per EventBatch.");
ABSL_FLAG(std::string, capture_id, "",
          "Capture id (default: synthetic-<pid> for window captures, "
          "synthetic-cmd for command captures).");
ABSL_FLAG(std::string, origin, "window", "window or command.");
ABSL_FLAG(std::string, requested_name, "",
          "CaptureStarted.requested_name (default $VLLM_TORCH_PROFILE).");
ABSL_FLAG(uint64_t, disconnect_after_events, 0,
          "Cancel each stream after this many events, without "
          "CaptureFinished (simulates a crash). 0 = off.");
ABSL_FLAG(bool, wait_for_command, false,
          "Wait for a StartCaptureCommand from the collector and answer it.");
ABSL_FLAG(int, command_timeout_ms, 60000, "How long --wait_for_command waits.");
ABSL_FLAG(uint64_t, dropped, 0,
          "Events reported as dropped in CaptureFinished.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Streams synthetic probe events to a vllm-profiler collector.");
  absl::ParseCommandLine(argc, argv);
  vllm_profiler::synthetic_probe::ClientOptions o;
  // Like the real probe, follow the environment `vpctl run` and the webhook
  // set, unless flags say otherwise.
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v != nullptr ? v : "");
  };
  o.socket = absl::GetFlag(FLAGS_socket);
  if (o.socket.empty()) o.socket = env("VLLM_PROFILER_SOCKET");
  if (o.socket.empty()) o.socket = "/home/vllm/profiler/collector.sock";
  o.address = absl::GetFlag(FLAGS_address);
  if (o.address.empty()) o.address = env("VLLM_PROFILER_ADDRESS");
  o.processes = absl::GetFlag(FLAGS_processes);
  o.pid_base = absl::GetFlag(FLAGS_pid_base);
  o.same_pid = absl::GetFlag(FLAGS_same_pid);
  o.process_uid_base = absl::GetFlag(FLAGS_process_uid_base);
  o.events = absl::GetFlag(FLAGS_events);
  o.batch_events = absl::GetFlag(FLAGS_batch_events);
  o.capture_id = absl::GetFlag(FLAGS_capture_id);
  const std::string origin = absl::GetFlag(FLAGS_origin);
  if (origin == "window") {
    o.origin = vllm_profiler::v1::CAPTURE_ORIGIN_WINDOW;
  } else if (origin == "command") {
    o.origin = vllm_profiler::v1::CAPTURE_ORIGIN_COMMAND;
  } else {
    std::fprintf(stderr,
                 "synthetic_probe: --origin must be window or command, not "
                 "'%s'\n",
                 origin.c_str());
    return 2;
  }
  o.requested_name = absl::GetFlag(FLAGS_requested_name);
  if (o.requested_name.empty()) o.requested_name = env("VLLM_TORCH_PROFILE");
  o.disconnect_after_events = absl::GetFlag(FLAGS_disconnect_after_events);
  o.wait_for_command = absl::GetFlag(FLAGS_wait_for_command);
  o.command_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_command_timeout_ms));
  o.dropped = absl::GetFlag(FLAGS_dropped);

  vllm_profiler::synthetic_probe::RunResult r =
      vllm_profiler::synthetic_probe::RunSyntheticProbe(o);
  const double secs = absl::ToDoubleSeconds(r.elapsed);
  std::string pids;
  for (const auto& p : r.processes) {
    if (!pids.empty()) pids += ",";
    pids += std::to_string(p.pid);
  }
  std::printf(
      "synthetic_probe: sent %llu events from %zu process(es) [pids %s] in "
      "%.3f s: %.0f events/s\n",
      static_cast<unsigned long long>(r.events_sent), r.processes.size(),
      pids.c_str(), secs, secs > 0 ? r.events_sent / secs : 0.0);
  std::fflush(stdout);
  if (!r.status.ok()) {
    std::fprintf(stderr, "synthetic_probe: %s\n", r.status.ToString().c_str());
    return 1;
  }
  return 0;
}
