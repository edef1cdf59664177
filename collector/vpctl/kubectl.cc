#include "collector/vpctl/kubectl.h"

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace vllm_profiler::collector::vpctl {
namespace {

std::vector<std::string> Argv(const KubectlOptions& o,
                              const std::vector<std::string>& args) {
  std::vector<std::string> argv = {o.binary};
  if (!o.context.empty()) {
    argv.push_back("--context");
    argv.push_back(o.context);
  }
  argv.push_back("-n");
  argv.push_back(o.ns);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Name(const std::vector<std::string>& args) {
  std::string name = "kubectl";
  for (size_t i = 0; i < args.size() && i < 2; ++i) {
    absl::StrAppend(&name, " ", args[i]);
  }
  return name;
}

// What kubectl said last, without its progress lines; else its exit status.
std::string Why(const std::string& log, std::optional<int> code) {
  std::string why;
  for (absl::string_view line : absl::StrSplit(ReadAll(log), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "Forwarding from") ||
        absl::StartsWith(line, "Handling connection")) {
      continue;
    }
    why = std::string(line);
  }
  if (!why.empty()) return why;
  return code.has_value() ? absl::StrCat("exit status ", *code) : "";
}

}  // namespace

absl::StatusOr<std::string> RunKubectl(const KubectlOptions& options,
                                       const std::vector<std::string>& args,
                                       absl::Duration timeout) {
  static std::atomic<int> counter{0};
  const std::string base =
      absl::StrCat(options.work_dir, "/kubectl-", ++counter);
  absl::StatusOr<std::unique_ptr<Subprocess>> p =
      Subprocess::Start(Argv(options, args), base + ".out", base + ".err");
  if (!p.ok()) return absl::UnavailableError(p.status().message());
  absl::StatusOr<int> code = (*p)->Wait(timeout);
  if (!code.ok()) {
    return absl::UnavailableError(
        absl::StrCat(Name(args), ": ", code.status().message()));
  }
  if (*code != 0) {
    std::string why = LastLine(base + ".err");
    if (why.empty()) why = absl::StrCat("exit status ", *code);
    return absl::UnavailableError(absl::StrCat(Name(args), ": ", why));
  }
  return ReadAll(base + ".out");
}

int ForwardedPort(const std::string& log) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    constexpr absl::string_view kPrefix = "Forwarding from 127.0.0.1:";
    if (!absl::ConsumePrefix(&line, kPrefix)) continue;
    const size_t end = line.find(' ');
    int port = 0;
    if (absl::SimpleAtoi(line.substr(0, end), &port) && port > 0 &&
        port < 65536) {
      return port;
    }
  }
  return 0;
}

PortForward::PortForward(KubectlOptions kubectl, Options options)
    : kubectl_(std::move(kubectl)), options_(std::move(options)) {}

std::string PortForward::LogPath() const {
  return absl::StrCat(kubectl_.work_dir, "/port-forward-", options_.pod, "-",
                      starts_, ".log");
}

absl::Status PortForward::Start() {
  ++starts_;
  const std::string log = LogPath();
  absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Start(
      Argv(kubectl_,
           {"port-forward", "--address", "127.0.0.1", "pod/" + options_.pod,
            absl::StrCat(":", options_.remote_port)}),
      log, log);
  if (!p.ok()) return absl::UnavailableError(p.status().message());
  process_ = std::move(*p);
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  while (true) {
    if (const int port = ForwardedPort(ReadAll(log)); port != 0) {
      addr_ = absl::StrCat("127.0.0.1:", port);
      return absl::OkStatus();
    }
    std::optional<int> code = process_->Poll();
    if (code.has_value() || absl::Now() >= deadline) {
      process_->Stop();
      std::string why = Why(log, process_->Poll());
      if (why.empty()) why = "no \"Forwarding from\" line in time";
      return absl::UnavailableError(
          absl::StrCat("kubectl port-forward pod/", options_.pod, ": ", why));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status PortForward::EnsureAlive() {
  if (process_ != nullptr && !process_->Poll().has_value()) {
    return absl::OkStatus();
  }
  const std::string why = process_ != nullptr ? Why(LogPath(), process_->Poll())
                                              : std::string("not started");
  if (starts_ >= 2) {
    return absl::UnavailableError(
        absl::StrCat("kubectl port-forward pod/", options_.pod, " died again (",
                     why, "); not restarted a second time"));
  }
  absl::Status s = Start();
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("kubectl port-forward pod/", options_.pod, " died (", why,
                     ") and could not be restarted: ", s.message()));
  }
  return absl::OkStatus();
}

bool PortForward::DiedWithin(absl::Duration grace) {
  if (process_ == nullptr) return true;
  const absl::Time deadline = absl::Now() + grace;
  while (!process_->Poll().has_value()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

void PortForward::Stop() {
  if (process_ != nullptr) process_->Stop();
}

}  // namespace vllm_profiler::collector::vpctl
