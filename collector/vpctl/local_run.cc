#include "collector/vpctl/local_run.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "collector/vpctl/format.h"
#include "collector/vpctl/summary.h"
#include "collector/vpctl/trace_client.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace vllm_profiler::collector::vpctl {
namespace {

bool IsFile(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string SelfPath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::string Dirname(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

// Runfiles roots that may hold our workspace's files.
std::vector<std::string> RunfilesRoots() {
  std::vector<std::string> roots;
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* v = std::getenv(var)) {
      roots.push_back(std::string(v) + "/vllm_profiler");
    }
  }
  const std::string self = SelfPath();
  if (!self.empty()) roots.push_back(self + ".runfiles/vllm_profiler");
  return roots;
}

absl::StatusOr<std::string> FindFirst(const char* env_var,
                                      const std::vector<std::string>& tries,
                                      bool allow_dir, const std::string& what) {
  if (const char* v = std::getenv(env_var); v != nullptr && *v != '\0') {
    return std::string(v);
  }
  for (const std::string& p : tries) {
    if (IsFile(p) || (allow_dir && IsDir(p))) return p;
  }
  return absl::NotFoundError(absl::StrCat(what, " not found (tried $", env_var,
                                          ", ", absl::StrJoin(tries, ", "),
                                          ")"));
}

// Spawns argv with `env`; stdout/stderr to `log_path` when not empty.
// SIGINT/SIGQUIT are reset to default in the child.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env,
                            const std::string& log_path) {
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGQUIT);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc =
      posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc)));
  }
  return pid;
}

// Waits for `pid`; returns a shell-style exit code (128+signal).
int WaitExit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// True once `pid` exited (reaped).
bool Exited(pid_t pid, int* code) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r != pid) return false;
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

void StopProcess(pid_t pid) {
  ::kill(pid, SIGTERM);
  int code;
  for (int i = 0; i < 100; ++i) {
    if (Exited(pid, &code)) return;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  WaitExit(pid);
}

std::string Tail(const std::string& path, size_t bytes = 2000) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

void RemoveTree(const std::string& dir) {
  std::vector<std::string> argv = {"rm", "-rf", dir};
  absl::StatusOr<pid_t> pid = Spawn(argv, {}, "");
  if (pid.ok()) WaitExit(*pid);
}

std::vector<std::string> ChildEnv(const LocalRunOptions& options,
                                  const std::string& probe_dir,
                                  const std::string& socket) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  const std::string old = env.count("PYTHONPATH") ? env["PYTHONPATH"] : "";
  env["PYTHONPATH"] = old.empty() ? probe_dir : probe_dir + ":" + old;
  env["VLLM_PROFILER_SOCKET"] = socket;
  env.erase("VLLM_PROFILER_ADDRESS");
  env["VLLM_PROFILER_ENABLED"] = "1";
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

void PrintError(const absl::Status& s) {
  std::fprintf(stderr, "vpctl: %s\n", std::string(s.message()).c_str());
}

// The collector binary and the probe (folder or bundle): as given, else
// found next to vpctl. Says how to build what is missing.
bool ResolveInputs(const LocalRunOptions& options, std::string* collector,
                   std::string* probe) {
  absl::StatusOr<std::string> c =
      options.collector.empty() ? FindCollector() : options.collector;
  if (!c.ok()) {
    std::fprintf(stderr,
                 "vpctl: %s\n  build it with `bazel build //collector` or "
                 "pass --collector PATH\n",
                 std::string(c.status().message()).c_str());
    return false;
  }
  absl::StatusOr<std::string> p =
      options.probe_dir.empty() ? FindProbeBundle() : options.probe_dir;
  if (!p.ok()) {
    std::fprintf(
        stderr,
        "vpctl: %s\n  build it with `bazel build //probe:probe_bundle` "
        "or pass --probe-dir DIR\n",
        std::string(p.status().message()).c_str());
    return false;
  }
  *collector = *std::move(c);
  *probe = *std::move(p);
  return true;
}

// The private collector's temporary folder: its probe socket, trace
// directory, port file and log (and the unpacked probe, if any).
struct RunFolder {
  std::string root;
  std::string socket;
  std::string trace_dir;
  std::string port_file;
  std::string log;
};

absl::StatusOr<RunFolder> MakeRunFolder() {
  char tmpl[] = "/tmp/vpctl-run.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    return absl::InternalError(absl::StrCat(
        "cannot create a temporary folder: ", std::strerror(errno)));
  }
  RunFolder f;
  f.root = tmpl;
  f.socket = f.root + "/collector.sock";
  f.trace_dir = f.root + "/traces";
  f.port_file = f.root + "/ports.json";
  f.log = f.root + "/collector.log";
  ::mkdir(f.trace_dir.c_str(), 0755);
  return f;
}

// The probe's install folder: `probe` when it is a folder, else the bundle
// (a tar) unpacked into the run folder.
absl::StatusOr<std::string> ProbeFolder(const std::string& probe,
                                        const RunFolder& folder) {
  if (IsDir(probe)) return probe;
  const std::string dir = folder.root + "/probe";
  ::mkdir(dir.c_str(), 0755);
  absl::StatusOr<pid_t> tar = Spawn({"tar", "-xf", probe, "-C", dir}, {}, "");
  if (!tar.ok() || WaitExit(*tar) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot unpack the probe bundle ", probe));
  }
  return dir;
}

// The ports the collector wrote to its --port_file; false until it has.
bool ReadPorts(const std::string& port_file, int* grpc_port, int* http_port) {
  std::ifstream in(port_file);
  if (!in) return false;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("grpc_port")) return false;
  *grpc_port = j.value("grpc_port", 0);
  *http_port = j.value("http_port", 0);
  return *grpc_port != 0;
}

struct CollectorProcess {
  pid_t pid = 0;
  int grpc_port = 0;
  int http_port = 0;
};

// Starts the private collector on loopback port 0 and waits (up to 20 s) for
// its port file. On failure no collector is left running, and the error
// carries the tail of its log.
absl::StatusOr<CollectorProcess> StartCollector(const std::string& binary,
                                                const LocalRunOptions& options,
                                                const RunFolder& folder) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  std::vector<std::string> argv = {binary,
                                   "--probe_socket=" + folder.socket,
                                   "--grpc_address=127.0.0.1:0",
                                   "--http_address=127.0.0.1:0",
                                   "--trace_dir=" + folder.trace_dir,
                                   "--port_file=" + folder.port_file,
                                   "--window_linger_ms=300",
                                   "--max_traces=1000"};
  argv.insert(argv.end(), options.collector_args.begin(),
              options.collector_args.end());
  CollectorProcess cp;
  absl::StatusOr<pid_t> pid = Spawn(argv, env, folder.log);
  if (!pid.ok()) return pid.status();
  cp.pid = *pid;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    int code;
    if (Exited(cp.pid, &code)) {
      return absl::UnavailableError(absl::StrCat(
          "the collector exited with status ", code, ":\n", Tail(folder.log)));
    }
    if (absl::Now() > deadline) {
      StopProcess(cp.pid);
      return absl::DeadlineExceededError(absl::StrCat(
          "the collector did not start in time:\n", Tail(folder.log)));
    }
    if (ReadPorts(folder.port_file, &cp.grpc_port, &cp.http_port)) return cp;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

// Runs COMMAND with the probe's environment; its exit code, 127 when it
// cannot start. vpctl ignores Ctrl-C meanwhile: the command gets it and
// exits, and vpctl still collects the trace.
int RunCommand(const LocalRunOptions& options, const std::string& probe_dir,
               const std::string& socket) {
  struct sigaction ignore {
  }, old_int{}, old_quit{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  absl::StatusOr<pid_t> child =
      Spawn(options.command, ChildEnv(options, probe_dir, socket), "");
  int command_code = 127;
  if (child.ok()) {
    command_code = WaitExit(*child);
  } else {
    PrintError(child.status());
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  if (child.ok()) {
    std::fprintf(stderr, "vpctl: command exited with status %d (pid %d)\n",
                 command_code, static_cast<int>(*child));
  }
  return command_code;
}

// True when no probe is connected and every capture is finished or failed.
bool Quiet(const v1::GetStatusResponse& status) {
  bool quiet = status.probes().empty();
  for (const auto& c : status.captures()) {
    quiet = quiet && (c.finished() || !c.error().empty());
  }
  return quiet;
}

// Waits until the collector is quiet twice in a row (a disconnect may still
// be in flight), or `timeout` passes (then says so and goes on).
void WaitUntilFinalized(TraceClient& client, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int quiet_polls = 0;
  absl::Status last_error;
  while (quiet_polls < 2 && absl::Now() < deadline) {
    absl::StatusOr<v1::GetStatusResponse> status = client.Status();
    if (!status.ok()) last_error = status.status();
    quiet_polls = status.ok() && Quiet(*status) ? quiet_polls + 1 : 0;
    if (quiet_polls < 2) absl::SleepFor(absl::Milliseconds(100));
  }
  if (quiet_polls < 2) {
    std::fprintf(
        stderr, "vpctl: the collector did not finish the trace within %s%s\n",
        absl::FormatDuration(timeout).c_str(),
        last_error.ok() ? ""
                        : (": " + std::string(last_error.message())).c_str());
  }
}

// -o names the file when there is one trace; otherwise the traces go next
// to it (or to .) under the names the collector chose.
std::string TraceOutputPath(const LocalRunOptions& options,
                            const v1::TraceInfo& t, size_t num_traces) {
  if (!options.output.empty() && num_traces == 1) return options.output;
  const std::string dir =
      options.output.empty() ? "." : Dirname(options.output);
  return dir + "/" + t.file_name();
}

// Where the trace went, how to open it and (optionally) its summary.
void PrintTraceReport(const v1::TraceInfo& t, const std::string& out,
                      uint64_t bytes, bool print_summary) {
  std::printf(
      "vpctl: trace written to %s (%s, %llu events, %d "
      "process(es), %s)\n",
      out.c_str(), HumanBytes(bytes).c_str(),
      static_cast<unsigned long long>(t.num_events()), t.pids_size(),
      t.complete() ? "complete"
                   : ("INCOMPLETE" +
                      (t.error().empty() ? std::string() : ": " + t.error()))
                         .c_str());
  std::printf(
      "  open it in https://ui.perfetto.dev (\"Open trace file\") or "
      "chrome://tracing (\"Load\")\n");
  if (print_summary) {
    absl::StatusOr<std::string> summary =
        SummarizeTraceFile(out, SummaryOptions());
    if (summary.ok()) {
      std::printf("%s", summary->c_str());
    } else {
      std::printf("  (no summary: %s)\n",
                  std::string(summary.status().message()).c_str());
    }
  }
  std::fflush(stdout);
}

// Downloads every trace on the collector, oldest first, and reports each.
// False when there is none or one could not be downloaded; `keep_folder` is
// set when the collector's files may explain a failed download.
bool DownloadTraces(TraceClient& client, const LocalRunOptions& options,
                    bool* keep_folder) {
  absl::StatusOr<v1::ListTracesResponse> list = client.List();
  if (!list.ok()) {
    PrintError(list.status());
    *keep_folder = true;
    return false;
  }
  if (list->traces().empty()) {
    std::fprintf(
        stderr,
        "vpctl: no trace was captured. Check that the command runs the "
        "profiled function (VLLM_PROFILER_TARGET, default "
        "vllm.v1.worker.gpu_worker:Worker.execute_model) at least "
        "--start-step + --steps times (defaults 100 and 50), and that it "
        "runs a Python that can import torch.\n");
    return false;
  }
  bool all_ok = true;
  const std::vector<v1::TraceInfo> traces(list->traces().rbegin(),
                                          list->traces().rend());
  for (const v1::TraceInfo& t : traces) {
    const std::string out = TraceOutputPath(options, t, traces.size());
    absl::StatusOr<uint64_t> bytes = client.Fetch(t.id(), out);
    if (!bytes.ok()) {
      std::fprintf(stderr, "vpctl: cannot download %s: %s\n", t.id().c_str(),
                   std::string(bytes.status().message()).c_str());
      all_ok = false;
      *keep_folder = true;
      continue;
    }
    PrintTraceReport(t, out, *bytes, options.print_summary);
  }
  return all_ok;
}

}  // namespace

absl::StatusOr<std::string> FindCollector() {
  std::vector<std::string> tries;
  for (const std::string& r : RunfilesRoots()) {
    tries.push_back(r + "/collector/collector");
  }
  const std::string dir = Dirname(SelfPath());
  tries.push_back(dir + "/../collector");  // bazel-bin/collector/collector
  tries.push_back(dir + "/collector");     // Installed side by side.
  tries.push_back("bazel-bin/collector/collector");
  return FindFirst("VPCTL_COLLECTOR", tries, false, "collector binary");
}

absl::StatusOr<std::string> FindProbeBundle() {
  std::vector<std::string> tries;
  for (const std::string& r : RunfilesRoots()) {
    tries.push_back(r + "/probe/probe_bundle.tar");
  }
  const std::string dir = Dirname(SelfPath());
  tries.push_back(dir + "/../../probe/probe_bundle.tar");
  tries.push_back(dir + "/probe");
  tries.push_back(dir + "/probe_bundle.tar");
  tries.push_back("bazel-bin/probe/probe_bundle.tar");
  return FindFirst("VPCTL_PROBE_DIR", tries, true, "probe bundle");
}

int RunLocal(const LocalRunOptions& options) {
  if (options.command.empty()) {
    std::fprintf(stderr, "vpctl: run needs a command after '--'\n");
    return 2;
  }
  std::string collector, probe;
  if (!ResolveInputs(options, &collector, &probe)) return 1;
  absl::StatusOr<RunFolder> folder = MakeRunFolder();
  if (!folder.ok()) {
    PrintError(folder.status());
    return 1;
  }
  absl::StatusOr<std::string> probe_dir = ProbeFolder(probe, *folder);
  if (!probe_dir.ok()) {
    PrintError(probe_dir.status());
    RemoveTree(folder->root);
    return 1;
  }
  absl::StatusOr<CollectorProcess> cp =
      StartCollector(collector, options, *folder);
  if (!cp.ok()) {
    PrintError(cp.status());
    RemoveTree(folder->root);
    return 1;
  }
  const std::string addr = absl::StrCat("127.0.0.1:", cp->grpc_port);
  std::fprintf(stderr,
               "vpctl: collector up (gRPC %s, HTTP 127.0.0.1:%d, probes on "
               "%s)\nvpctl: running: %s\n",
               addr.c_str(), cp->http_port, folder->socket.c_str(),
               absl::StrJoin(options.command, " ").c_str());

  const int command_code = RunCommand(options, *probe_dir, folder->socket);
  TraceClient client(TraceClient::Options{addr, absl::Seconds(10)});
  WaitUntilFinalized(client, options.finalize_timeout);
  bool keep_folder = false;
  const bool downloaded = DownloadTraces(client, options, &keep_folder);

  StopProcess(cp->pid);
  if (keep_folder) {
    std::fprintf(stderr, "vpctl: collector files kept in %s (log: %s)\n",
                 folder->root.c_str(), folder->log.c_str());
  } else {
    RemoveTree(folder->root);
  }
  // COMMAND's own failure says most; else whether a trace came out.
  if (command_code != 0) return command_code;
  return downloaded ? 0 : 1;
}

}  // namespace vllm_profiler::collector::vpctl
