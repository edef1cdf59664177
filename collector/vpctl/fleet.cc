#include "collector/vpctl/fleet.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace vllm_profiler::collector::vpctl {
namespace {

constexpr int kClockSamples = 3;

std::string MakeWorkDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/vpctl-XXXXXX");
  if (::mkdtemp(&pattern[0]) == nullptr) return "";
  return pattern;
}

void RemoveDir(const std::string& dir) {
  if (dir.empty()) return;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

void Say(const std::string& line) {
  std::fprintf(stderr, "vpctl: %s\n", line.c_str());
}

}  // namespace

absl::StatusOr<FleetOptions> FleetOptionsFromArgs(const ParsedArgs& a) {
  FleetOptions o;
  o.kubectl.ns = a.Get("n");
  o.kubectl.context = a.Get("context");
  const char* env = std::getenv("VPCTL_KUBECTL");
  o.kubectl.binary = a.Get("kubectl", env != nullptr && *env ? env : "kubectl");
  o.selector = a.Get("l");
  for (absl::string_view p :
       absl::StrSplit(a.Get("pod"), ',', absl::SkipEmpty())) {
    o.pods.emplace_back(p);
  }
  if (o.kubectl.ns.empty()) {
    return absl::InvalidArgumentError(
        "pod selection needs a namespace: -n NAMESPACE");
  }
  if (o.selector.empty() == o.pods.empty()) {
    return absl::InvalidArgumentError(
        "pod selection needs exactly one of -l SELECTOR and --pod NAME");
  }
  absl::StatusOr<uint64_t> max = a.GetUint("max-pods", 16);
  if (!max.ok()) return max.status();
  if (*max == 0) return absl::InvalidArgumentError("--max-pods must be > 0");
  o.max_pods = *max;
  return o;
}

FleetMember::FleetMember(PodInfo pod, const KubectlOptions& kubectl,
                         int remote_port)
    : pod_(std::move(pod)),
      forward_(kubectl, PortForward::Options{pod_.name, remote_port}) {}

absl::Status FleetMember::Connect() {
  if (absl::Status s = forward_.Start(); !s.ok()) return s;
  client_ = std::make_unique<TraceClient>(
      TraceClient::Options{forward_.addr(), absl::Seconds(10)});
  int64_t best_rtt = -1;
  for (int i = 0; i < kClockSamples; ++i) {
    const int64_t t0 = absl::GetCurrentTimeNanos();
    absl::StatusOr<v1::GetStatusResponse> s = client_->Status();
    const int64_t t1 = absl::GetCurrentTimeNanos();
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "its collector does not answer through the port-forward: ",
          s.status().message()));
    }
    if (s->realtime_ns() == 0) continue;  // An older collector.
    if (best_rtt < 0 || t1 - t0 < best_rtt) {
      best_rtt = t1 - t0;
      clock_.offset_ns = s->realtime_ns() - (t0 + (t1 - t0) / 2);
      clock_.uncertainty_ns = (t1 - t0 + 1) / 2;
    }
  }
  return absl::OkStatus();
}

bool FleetMember::ForwardDied() {
  // A call fails as the forward goes down; give kubectl a moment to exit.
  return forward_.DiedWithin(absl::Milliseconds(500));
}

absl::Status FleetMember::Revive() {
  const std::string before = forward_.addr();
  if (absl::Status s = forward_.EnsureAlive(); !s.ok()) return s;
  if (forward_.addr() != before || client_ == nullptr) {
    if (client_ != nullptr) {
      Say(absl::StrCat("pod ", pod_.name, ": port-forward died; restarted on ",
                       forward_.addr()));
    }
    client_ = std::make_unique<TraceClient>(
        TraceClient::Options{forward_.addr(), absl::Seconds(10)});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Open(FleetOptions options) {
  options.kubectl.work_dir = MakeWorkDir();
  if (options.kubectl.work_dir.empty()) {
    return absl::UnavailableError("cannot create a scratch folder in /tmp");
  }
  std::unique_ptr<Fleet> fleet(new Fleet(std::move(options)));
  if (absl::Status s = fleet->Select(); !s.ok()) return s;
  fleet->Connect();
  if (fleet->members_.empty()) {
    return absl::FailedPreconditionError("no pod's collector could be reached");
  }
  return fleet;
}

absl::Status Fleet::Select() {
  std::vector<std::string> args = {"get", "pods", "-o", "json"};
  if (!options_.selector.empty()) {
    args.push_back("-l");
    args.push_back(options_.selector);
  }
  absl::StatusOr<std::string> out =
      RunKubectl(options_.kubectl, args, absl::Seconds(60));
  if (!out.ok()) return out.status();
  absl::StatusOr<std::vector<PodInfo>> pods = ParsePods(*out, options_.pods);
  if (!pods.ok()) return pods.status();
  for (const PodInfo& p : *pods) {
    if (p.skip_reason.empty()) {
      usable_.push_back(p);
    } else {
      Say(absl::StrCat("pod ", p.name, " skipped: ", p.skip_reason));
    }
  }
  const size_t matched = usable_.size();
  if (usable_.size() > options_.max_pods) usable_.resize(options_.max_pods);
  Say(absl::StrCat(pods->size(), " pod(s) found in ", options_.kubectl.ns, ", ",
                   matched, " usable",
                   matched > usable_.size()
                       ? absl::StrCat("; using the first ", usable_.size(),
                                      " (--max-pods ", options_.max_pods, ")")
                       : ""));
  if (usable_.empty()) {
    return absl::FailedPreconditionError(
        "no usable pod (none injected by the vllm-profiler webhook with a "
        "ready collector)");
  }
  return absl::OkStatus();
}

void Fleet::Connect() {
  std::vector<std::unique_ptr<FleetMember>> all;
  for (const PodInfo& p : usable_) {
    all.push_back(std::make_unique<FleetMember>(p, options_.kubectl,
                                                options_.remote_port));
  }
  std::vector<absl::Status> status(all.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < all.size(); ++i) {
    threads.emplace_back([&, i] { status[i] = all[i]->Connect(); });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < all.size(); ++i) {
    if (status[i].ok()) {
      members_.push_back(std::move(all[i]));
    } else {
      Say(absl::StrCat("pod ", all[i]->pod().name,
                       " left out: ", status[i].message()));
      all[i]->Stop();
    }
  }
}

Fleet::~Fleet() {
  for (auto& m : members_) m->Stop();
  members_.clear();
  RemoveDir(options_.kubectl.work_dir);
}

void Fleet::ForEach(const std::function<void(FleetMember&)>& fn) {
  std::vector<std::thread> threads;
  for (auto& m : members_) {
    FleetMember* member = m.get();
    threads.emplace_back([&fn, member] { fn(*member); });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace vllm_profiler::collector::vpctl
