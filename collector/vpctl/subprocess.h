// A child process for vpctl's kubectl calls: started with posix_spawnp
// (PATH lookup), stdout and stderr to files, stopped with SIGTERM then
// SIGKILL. Output goes to files, not pipes, so a chatty child
// (`kubectl port-forward` prints a line per connection) never blocks on a
// full pipe nobody reads.
//
// Thread safety: one Subprocess is used by one thread at a time; distinct
// ones may be started from several threads. The destructor stops the child.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_SUBPROCESS_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vllm_profiler::collector::vpctl {

class Subprocess {
 public:
  // Starts `argv`; stdout goes to `stdout_path`, stderr to `stderr_path`
  // (the same path: both in one file). NOT_FOUND when the program is not
  // on PATH.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::string& stdout_path,
      const std::string& stderr_path);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // The exit code once it exited (128 + signal when killed), else nullopt.
  std::optional<int> Poll();
  // Waits until it exits or `timeout` passes (then stops it and returns
  // DEADLINE_EXCEEDED).
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGTERM, up to 2 s, then SIGKILL. Idempotent.
  void Stop();

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> exit_code_;
};

// The last non-empty line of a file (at most `max_bytes` from its end);
// empty when it cannot be read.
std::string LastLine(const std::string& path, size_t max_bytes = 4096);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_SUBPROCESS_H_
