#include "probe/core/probe_runtime.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "probe/core/log.h"

namespace vllm_profiler::probe {
namespace {

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

// One process's identity across pid namespaces: pids of containers that do
// not share one collide (pid 1, small pids), so the Hello also carries a
// 64-bit id made of the boot id, the pid and the process's start time
// (/proc/self/stat field 22), or a random one where those cannot be read.
uint64_t ComputeProcessUid(int64_t pid) {
  std::string key = ReadFirstLine("/proc/sys/kernel/random/boot_id");
  std::string stat = ReadFirstLine("/proc/self/stat");
  // Fields after the command (which may hold spaces) start past its ')'.
  const size_t close = stat.rfind(')');
  std::string start_time;
  if (close != std::string::npos) {
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
    if (f.size() > 19) start_time = std::string(f[19]);  // Field 22.
  }
  uint64_t uid;
  if (!key.empty() && !start_time.empty()) {
    absl::StrAppend(&key, "/", pid, "/", start_time);
    uid = 1469598103934665603ull;  // FNV-1a: the same process, the same id.
    for (unsigned char c : key) uid = (uid ^ c) * 1099511628211ull;
  } else {
    uid = absl::Uniform<uint64_t>(absl::BitGen());
  }
  return uid == 0 ? 1 : uid;
}

std::vector<std::string> ReadCmdline() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> out;
  std::string arg;
  while (out.size() < 32 && std::getline(in, arg, '\0')) {
    if (arg.size() > 256) arg.resize(256);
    out.push_back(arg);
  }
  return out;
}

EventConverter::Options ConverterOptions(TickConverter* ticks) {
  EventConverter::Options o;
  o.ticks = ticks;
  return o;
}

// Rough wire size of one GPU event, to bound gpu_events_ by the memory budget.
constexpr size_t kGpuEventBytes = 256;

}  // namespace

ProbeRuntime::ProbeRuntime(Options options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr   ? options_.clock
             : options_.config.tsc_clock ? RealClock::Get()
                                         : RealClock::GetMonotonicOnly()),
      recorder_(Recorder::Options{options_.config.max_buffer_bytes,
                                  options_.chunk_bytes},
                clock_),
      transport_(options_.transport != nullptr
                     ? std::move(options_.transport)
                     : NewGrpcTransport(options_.config.Target())),
      gpu_tracer_(std::move(options_.gpu_tracer)),
      controller_(CaptureController::Options{
          true, options_.config.start_step, options_.config.num_steps,
          options_.config.duration_ms, options_.config.record_shapes,
          options_.config.gpu,
          options_.pid != 0 ? options_.pid : static_cast<int64_t>(getpid())}),
      ring_(options_.config.flight != FlightLevel::kOff
                ? std::make_unique<StepRing>(options_.config.flight_steps)
                : nullptr),
      gpu_ring_(
          options_.config.flight == FlightLevel::kGpu && gpu_tracer_ != nullptr
              ? std::make_unique<GpuRing>(options_.config.flight_gpu_bytes)
              : nullptr),
      flight_sink_(gpu_ring_ != nullptr ? std::make_unique<FlightGpuSink>(
                                              &strings_, gpu_ring_.get())
                                        : nullptr),
      max_gpu_events_(std::max<size_t>(
          1024, options_.config.max_buffer_bytes / kGpuEventBytes)),
      ticks_(clock_),
      converter_(ConverterOptions(&ticks_), &strings_),
      backoff_(options_.initial_backoff) {
  if (options_.pid == 0) options_.pid = getpid();
  process_uid_ = ComputeProcessUid(options_.pid);
  {
    MutexLock lock(&names_mu_);
    state_.set_rank(-1);
    state_.set_local_rank(-1);
    state_.set_world_size(-1);
    process_name_ = options_.process_name;
    python_version_ = options_.python_version;
    torch_version_ = options_.torch_version;
  }
  {
    MutexLock lock(&control_mu_);
    requested_name_ = options_.config.requested_name;
  }
  sender_ = std::thread([this] { SenderLoop(); });
}

ProbeRuntime::~ProbeRuntime() { Shutdown(absl::Seconds(2)); }

void ProbeRuntime::SetNames(std::string process_name,
                            std::string python_version,
                            std::string torch_version) {
  MutexLock lock(&names_mu_);
  if (!process_name.empty()) process_name_ = std::move(process_name);
  if (!python_version.empty()) python_version_ = std::move(python_version);
  if (!torch_version.empty()) torch_version_ = std::move(torch_version);
}

void ProbeRuntime::SetIdentity(int32_t rank, int32_t local_rank,
                               int32_t world_size) {
  MutexLock lock(&names_mu_);
  state_.set_rank(rank);
  state_.set_local_rank(local_rank);
  state_.set_world_size(world_size);
  ++state_version_;
}

void ProbeRuntime::SetIdleReason(std::string reason) {
  MutexLock lock(&names_mu_);
  state_.set_idle_reason(std::move(reason));
  ++state_version_;
}

void ProbeRuntime::SetOpSource(std::string source, std::string detail) {
  MutexLock lock(&names_mu_);
  state_.set_op_source(std::move(source));
  state_.set_op_source_detail(std::move(detail));
  ++state_version_;
}

void ProbeRuntime::AddWrappedTarget(std::string target) {
  MutexLock lock(&names_mu_);
  for (const std::string& t : state_.wrapped_targets()) {
    if (t == target) return;
  }
  state_.add_wrapped_targets(std::move(target));
  ++state_version_;
}

v1::ProbeState ProbeRuntime::state() const {
  MutexLock lock(&names_mu_);
  return state_;
}

void ProbeRuntime::SendStateIfChanged(bool force) {
  if (stream_ == nullptr) return;
  v1::ProbeMessage m;
  {
    MutexLock lock(&names_mu_);
    if (!force && state_version_ == state_version_sent_) return;
    state_version_sent_ = state_version_;
    *m.mutable_state() = state_;
    m.mutable_state()->set_process_name(process_name_);
  }
  Send(m);
}

void ProbeRuntime::SetStepName(std::string name) {
  MutexLock lock(&names_mu_);
  step_name_ = std::move(name);
  step_name_changed_ = true;
}

void ProbeRuntime::SetGpuGate(GpuGate gate) {
  MutexLock lock(&control_mu_);
  gpu_gate_ = gate;
}

void ProbeRuntime::SetCaptureListener(CaptureListener listener, void* user) {
  MutexLock lock(&control_mu_);
  listener_ = listener;
  listener_user_ = user;
  // A listener set mid-capture is told at once.
  if (listener_ != nullptr && capture_.generation != 0 && capture_.cpu_ops) {
    listener_(1, record_shapes() ? 1 : 0, listener_user_);
  }
}

int64_t ProbeRuntime::StepBegin() {
  int64_t step;
  {
    MutexLock lock(&control_mu_);
    if (shut_down_) return 0;
    // Relaxed: last_step_ is a statistic for commands; control_mu_ orders.
    step = last_step_.fetch_add(1, std::memory_order_relaxed) + 1;
    const int64_t now = clock_->MonotonicNs();
    Apply(controller_.OnStepBegin(step, now), step);
    // After Apply: a capture starting here snapshots the steps before it.
    if (ring_ != nullptr) ring_->Begin(step, now, Recorder::CurrentTid());
    if (gpu_ring_ != nullptr) FlightGpuLocked(now);
  }
  recorder_.StepBegin(step);
  return step;
}

void ProbeRuntime::StepEnd() {
  const int64_t step = last_step_.load(std::memory_order_relaxed);
  recorder_.StepEnd(step);
  MutexLock lock(&control_mu_);
  if (shut_down_) return;
  const int64_t now = clock_->MonotonicNs();
  if (ring_ != nullptr) ring_->End(now);
  Apply(controller_.OnStepEnd(step, now), step);
}

void ProbeRuntime::StepEndError(const char* error) {
  recorder_.StepError(last_step_.load(std::memory_order_relaxed), error);
  if (ring_ != nullptr) ring_->Error(error);
  StepEnd();
}

void ProbeRuntime::StepArgInt(const char* key, int64_t value) {
  recorder_.StepArgInt(last_step_.load(std::memory_order_relaxed), key, value);
  if (ring_ != nullptr) ring_->ArgInt(key, value);
}

void ProbeRuntime::StepArgStr(const char* key, const char* value) {
  recorder_.StepArgStr(last_step_.load(std::memory_order_relaxed), key, value);
  if (ring_ != nullptr) ring_->ArgStr(key, value);
}

void ProbeRuntime::StepAnnotate(int64_t num_requests, int64_t num_tokens,
                                int64_t num_prefill, int64_t num_decode) {
  const int64_t args[4] = {num_requests, num_tokens, num_prefill, num_decode};
  recorder_.StepArgs(last_step_.load(std::memory_order_relaxed), args);
  if (ring_ != nullptr) ring_->Shape(args);
}

bool ProbeRuntime::RequestCapture(uint32_t num_steps, uint32_t duration_ms,
                                  bool record_shapes) {
  MutexLock lock(&control_mu_);
  if (shut_down_ || controller_.active() || controller_.pending()) {
    return false;
  }
  v1::StartCaptureCommand cmd;
  cmd.set_capture_id(
      absl::StrCat("local-", options_.pid, "-", next_generation_ + 1));
  cmd.mutable_config()->set_num_steps(num_steps);
  cmd.mutable_config()->set_duration_ms(duration_ms);
  cmd.mutable_config()->set_record_shapes(record_shapes);
  cmd.mutable_config()->set_cpu_ops(true);
  cmd.mutable_config()->set_gpu_activity(options_.config.gpu);
  return controller_.OnStartCommand(cmd, last_step_.load());
}

void ProbeRuntime::Apply(const CaptureController::Decision& d, int64_t step) {
  if (!d.note.empty()) ProbeLog(ProbeLogLevel::kInfo, d.note);
  switch (d.action) {
    case CaptureController::Action::kNone:
      break;
    case CaptureController::Action::kStart:
      StartLocked(d.spec, step);
      break;
    case CaptureController::Action::kStop:
      capture_.last_step = step;
      StopLocked(d.spec);
      break;
  }
}

uint64_t ProbeRuntime::ExpectExternalOps() {
  MutexLock lock(&control_mu_);
  if (capture_.generation == 0 || !capture_.cpu_ops) return 0;
  capture_.external_ops = true;
  return capture_.generation;
}

void ProbeRuntime::ExternalOpsDone(uint64_t generation) {
  recorder_.HandOverLocal();  // This thread's chunk of `generation`.
  MutexLock lock(&control_mu_);
  if (deferred_.message != nullptr && deferred_.generation == generation) {
    ReleaseDeferredLocked("");
  }
}

void ProbeRuntime::ReleaseDeferredLocked(const std::string& error) {
  if (deferred_.message == nullptr) return;
  if (!error.empty()) {
    deferred_.message->mutable_capture_finished()->set_error(error);
    ProbeLog(ProbeLogLevel::kInfo, error);
  }
  recorder_.QueueMessage(std::move(deferred_.message), deferred_.generation);
  deferred_ = DeferredFinish{};
}

void ProbeRuntime::StartLocked(const CaptureSpec& spec, int64_t step) {
  // A capture still waiting for its external operators ends now: its late
  // operators are dropped (counted) rather than mixed into this one.
  ReleaseDeferredLocked(deferred_.message == nullptr
                            ? ""
                            : "a new capture started before the torch "
                              "profiler's operators of the last one arrived");
  const uint64_t gen = ++next_generation_;
  // Level gpu: the flight recording ends here, so that the GPU ring holds
  // every record of the steps before (the tracer flushes) and the capture
  // can take the tracer; the next step's start resumes it.
  StopFlightGpuLocked();
  SnapshotRingLocked(spec, gen);
  capture_ =
      CaptureState{spec.capture_id, gen, step, "", spec.config.cpu_ops()};
  auto msg = std::make_unique<v1::ProbeMessage>();
  v1::CaptureStarted* started = msg->mutable_capture_started();
  started->set_capture_id(spec.capture_id);
  started->set_origin(spec.origin);
  *started->mutable_config() = spec.config;
  started->set_first_step(step);
  started->set_start_ns(clock_->MonotonicNs());
  if (spec.origin == v1::CAPTURE_ORIGIN_WINDOW) {
    started->set_requested_name(requested_name_);
  }
  *started->mutable_clock() = ReadClockPair(*clock_);
  // The CaptureStarted is queued before any chunk of this generation.
  recorder_.QueueMessage(std::move(msg), gen);
  record_shapes_.store(spec.config.record_shapes(), std::memory_order_relaxed);
  recorder_.Begin(gen);
  captures_started_.fetch_add(1, std::memory_order_relaxed);
  ProbeLog(ProbeLogLevel::kDebug, absl::StrCat("capture ", spec.capture_id,
                                               " started at step ", step));
  if (listener_ != nullptr && spec.config.cpu_ops()) {
    listener_(1, spec.config.record_shapes() ? 1 : 0, listener_user_);
  }
  if (spec.config.gpu_activity()) {
    char reason[512] = {0};
    if (gpu_tracer_ == nullptr) {
      capture_.gpu_note = "GPU activity tracer not built into this probe";
    } else if (gpu_gate_ != nullptr &&
               gpu_gate_(reason, static_cast<int32_t>(sizeof(reason) - 1)) ==
                   0) {
      // Another profiler owns CUPTI right now: taking it would steal its
      // buffers. This capture keeps its CPU events.
      reason[sizeof(reason) - 1] = '\0';
      capture_.gpu_note = reason[0] != '\0'
                              ? std::string(reason)
                              : "another profiler is active in this process";
      ProbeLog(ProbeLogLevel::kInfo,
               absl::StrCat("capture ", spec.capture_id,
                            " records no GPU activity: ", capture_.gpu_note));
    } else {
      absl::Status s = gpu_tracer_->Start(this);
      if (s.ok()) {
        gpu_active_.store(true, std::memory_order_relaxed);
      } else {
        capture_.gpu_note = std::string(s.message());
      }
    }
  }
}

void ProbeRuntime::StopLocked(const CaptureSpec& spec) {
  if (gpu_active_.load(std::memory_order_relaxed)) {
    gpu_active_.store(false, std::memory_order_relaxed);
    gpu_tracer_->Stop();  // Flushes into AddEvent (gpu_mu_).
  }
  if (listener_ != nullptr && capture_.cpu_ops) {
    listener_(0, 0, listener_user_);
  }
  record_shapes_.store(false, std::memory_order_relaxed);
  auto msg = std::make_unique<v1::ProbeMessage>();
  v1::CaptureFinished* f = msg->mutable_capture_finished();
  f->set_capture_id(spec.capture_id);
  f->set_last_step(capture_.last_step);
  f->set_end_ns(clock_->MonotonicNs());
  f->set_gpu_activity_note(capture_.gpu_note);
  *f->mutable_clock() = ReadClockPair(*clock_);
  const uint64_t gen = capture_.generation;
  // Buffer-full drops are read after recording stopped (End) below, by the
  // sender, which adds them when it sends this message.
  if (capture_.external_ops) {
    // The fallback's operators come after the steps: the finish waits for
    // them (ExternalOpsDone), at most 30 s.
    recorder_.End(nullptr, gen);
    deferred_ = DeferredFinish{std::move(msg), gen,
                               clock_->MonotonicNs() + 30'000'000'000};
  } else {
    recorder_.End(std::move(msg), gen);
  }
  captures_finished_.fetch_add(1, std::memory_order_relaxed);
  capture_ = CaptureState{};
  ProbeLog(ProbeLogLevel::kDebug,
           absl::StrCat("capture ", spec.capture_id, " finished"));
}

uint32_t ProbeRuntime::InternString(std::string_view value) {
  return strings_.Intern(value);
}

void ProbeRuntime::AddEvent(v1::Event event) {
  MutexLock lock(&gpu_mu_);
  if (gpu_events_.size() >= max_gpu_events_) {
    ++gpu_dropped_;
    return;
  }
  gpu_events_.push_back(std::move(event));
}

void ProbeRuntime::AddTracerDrops(uint64_t records_dropped,
                                  uint64_t buffers_dropped) {
  MutexLock lock(&gpu_mu_);
  tracer_records_dropped_ += records_dropped;
  tracer_buffers_dropped_ += buffers_dropped;
}

v1::Hello ProbeRuntime::BuildHello() const {
  v1::Hello h;
  const ProbeConfig& c = options_.config;
  h.set_protocol_version(1);
  h.set_pid(options_.pid);
  h.set_process_uid(process_uid_);
  h.set_ppid(getppid());
  {
    MutexLock lock(&names_mu_);
    std::string name = process_name_;
    if (name.empty()) name = ReadFirstLine("/proc/self/comm");
    h.set_process_name(name);
    h.set_python_version(python_version_);
    h.set_torch_version(torch_version_);
  }
  for (std::string& a : ReadCmdline()) h.add_cmdline(std::move(a));
  {
    // vLLM's own identity (learnt at the first step) wins over the env's.
    MutexLock lock(&names_mu_);
    h.set_rank(state_.rank() >= 0 ? state_.rank() : c.rank);
    h.set_local_rank(state_.local_rank() >= 0 ? state_.local_rank()
                                              : c.local_rank);
    h.set_world_size(state_.world_size() >= 0 ? state_.world_size()
                                              : c.world_size);
  }
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0) h.set_hostname(host);
  h.set_pod_name(c.pod_name);
  h.set_pod_namespace(c.pod_namespace);
  h.set_node_name(c.node_name);
  h.set_container_name(c.container_name);
  h.set_probe_version(kProbeVersion);
  if (gpu_tracer_ != nullptr) h.set_cupti_version(gpu_tracer_->Describe());
  *h.mutable_clock() = ReadClockPair(*clock_);
  v1::CaptureConfig* w = h.mutable_window();
  w->set_start_after_steps(c.start_step - 1);
  w->set_num_steps(c.num_steps);
  w->set_duration_ms(c.duration_ms);
  w->set_record_shapes(c.record_shapes);
  w->set_gpu_activity(c.gpu);
  w->set_cpu_ops(true);
  return h;
}

// ---------------------------------------------------------------------------
// Sender thread.

bool ProbeRuntime::Send(const v1::ProbeMessage& message) {
  if (stream_ == nullptr) return false;
  if (!stream_->Write(message)) {
    stream_broken_.store(true, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool ProbeRuntime::TryConnect() {
  absl::StatusOr<std::unique_ptr<ProbeStream>> s =
      transport_->Connect(options_.connect_timeout);
  if (!s.ok()) {
    if (!outage_logged_) {
      outage_logged_ = true;
      ProbeLog(ProbeLogLevel::kInfo,
               absl::StrCat(s.status().message(),
                            "; the process runs on, captures are dropped "
                            "until it is (retrying with backoff)"));
    }
    next_connect_ = absl::Now() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    return false;
  }
  // Before the stream's reader runs: its Welcome decides again.
  collector_signatures_.store(false, std::memory_order_relaxed);
  stream_ = std::move(*s);
  stream_broken_.store(false, std::memory_order_relaxed);
  converter_.Reset();
  strings_watermark_ = 0;
  batch_sequence_ = 0;
  send_ = SendState{};
  {
    MutexLock lock(&names_mu_);
    converter_.set_step_name(step_name_);
    step_name_changed_ = false;
  }
  v1::ProbeMessage hello;
  *hello.mutable_hello() = BuildHello();
  if (!Send(hello)) {
    CloseStream(false);
    next_connect_ = absl::Now() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    return false;
  }
  SendStateIfChanged(/*force=*/true);
  if (outage_logged_) {
    ProbeLog(
        ProbeLogLevel::kInfo,
        absl::StrCat("connected to the collector at ", transport_->target()));
  } else {
    ProbeLog(
        ProbeLogLevel::kDebug,
        absl::StrCat("connected to the collector at ", transport_->target()));
  }
  outage_logged_ = false;
  backoff_ = options_.initial_backoff;
  connected_.store(true, std::memory_order_relaxed);
  reader_done_.store(false, std::memory_order_relaxed);
  ProbeStream* raw = stream_.get();
  reader_ = std::thread([this, raw] { ReaderLoop(raw); });
  return true;
}

void ProbeRuntime::CloseStream(bool graceful) {
  if (stream_ == nullptr) return;
  if (graceful && !stream_broken_.load()) {
    stream_->WritesDone();
    // Give the collector a moment to close its side.
    const absl::Time deadline = absl::Now() + absl::Milliseconds(500);
    while (!reader_done_.load() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  stream_->Cancel();
  if (reader_.joinable()) reader_.join();
  stream_->Finish();
  stream_.reset();
  connected_.store(false, std::memory_order_relaxed);
  if (send_.generation != 0) {
    dropped_send_total_.fetch_add(send_.dropped_send);
  }
  send_ = SendState{};
}

int64_t ProbeRuntime::NotBeforeNs(
    const v1::StartCaptureCommand& command) const {
  const int64_t at = command.config().start_at_unix_ns();
  if (at <= 0) return 0;
  // The wall-clock instant on this process's monotonic clock; a bogus
  // instant far away saturates instead of overflowing.
  const int64_t mono = clock_->MonotonicNs();
  const int64_t ahead = at - clock_->RealtimeNs();
  constexpr int64_t kMaxAheadNs = int64_t{24} * 3600 * 1000000000;
  return mono + std::min(std::max(ahead, -kMaxAheadNs), kMaxAheadNs);
}

void ProbeRuntime::ReaderLoop(ProbeStream* stream) {
  pthread_setname_np(pthread_self(), "vp-reader");
  v1::CollectorCommand cmd;
  while (stream->Read(&cmd)) {
    switch (cmd.command_case()) {
      case v1::CollectorCommand::kWelcome:
        if (cmd.welcome().max_batch_bytes() > 0) {
          max_batch_bytes_.store(cmd.welcome().max_batch_bytes());
        }
        collector_signatures_.store(cmd.welcome().input_signatures(),
                                    std::memory_order_relaxed);
        break;
      case v1::CollectorCommand::kStartCapture: {
        MutexLock lock(&control_mu_);
        NoteFlightDumpLocked(cmd.start_capture());
        if (controller_.OnStartCommand(cmd.start_capture(), last_step_.load(),
                                       NotBeforeNs(cmd.start_capture()))) {
          ProbeLog(ProbeLogLevel::kInfo,
                   absl::StrCat("capture ", cmd.start_capture().capture_id(),
                                " requested by the collector; starts at the "
                                "next step"));
        } else {
          ProbeLog(ProbeLogLevel::kInfo,
                   "ignored a StartCaptureCommand without capture_id");
        }
        break;
      }
      case v1::CollectorCommand::kStopCapture: {
        MutexLock lock(&control_mu_);
        controller_.OnStopCommand(cmd.stop_capture().capture_id());
        break;
      }
      default:
        break;  // Newer command: ignored (wire compatibility rule).
    }
  }
  stream_broken_.store(true);
  reader_done_.store(true);
  recorder_.Wake();
}

void ProbeRuntime::DrainGpuEvents(v1::ProbeMessage* msg) {
  std::vector<v1::Event> events;
  {
    MutexLock lock(&gpu_mu_);
    events.swap(gpu_events_);
  }
  if (events.empty()) return;
  if (send_.generation == 0) {
    dropped_send_total_.fetch_add(events.size());
    return;
  }
  v1::EventBatch* batch = msg->mutable_batch();
  for (v1::Event& e : events) {
    *batch->add_events() = std::move(e);
    ++send_.events_sent;
    // Keeps batches well under Welcome.max_batch_bytes.
    if (batch->events_size() >= 8192) SendBatch(msg);
  }
}

void ProbeRuntime::SendBatch(v1::ProbeMessage* msg) {
  v1::EventBatch* batch = msg->mutable_batch();
  strings_.AppendNew(&strings_watermark_, batch);
  if (batch->events_size() == 0 && batch->strings_size() == 0 &&
      batch->threads_size() == 0) {
    return;
  }
  batch->set_capture_id(send_.capture_id);
  batch->set_sequence(batch_sequence_++);
  const size_t n = batch->events_size();
  if (Send(*msg)) {
    batches_sent_.fetch_add(1, std::memory_order_relaxed);
    events_sent_total_.fetch_add(n, std::memory_order_relaxed);
  } else {
    send_.dropped_send += n;
  }
  batch->Clear();
}

size_t ProbeRuntime::ProcessAll(std::deque<QueueItem>& items) {
  size_t chunk_bytes = 0;
  size_t i = 0;
  while (i < items.size()) {
    if (items[i].chunk == nullptr) {
      Process(items[i++]);
      continue;
    }
    // A run of chunks becomes one batch, up to a bound: gRPC's cost per
    // message (framing, wakeups of its threads) is larger than a small
    // operator's, so fewer, larger batches are cheaper per event.
    if (chunk_batch_ == nullptr) {
      chunk_batch_ = std::make_unique<v1::ProbeMessage>();
    }
    v1::ProbeMessage* msg = chunk_batch_.get();
    // Wire events are smaller than their records, so bounding the records
    // keeps the batch under the collector's limit.
    const size_t limit =
        std::min<size_t>(kMaxBatchRecordBytes, max_batch_bytes_.load() / 2);
    size_t bytes = 0;
    while (i < items.size() && items[i].chunk != nullptr && bytes < limit) {
      bytes += items[i].chunk->used;
      ConvertChunk(items[i++].chunk, msg);
    }
    SendBatch(msg);
    chunk_bytes += bytes;
  }
  return chunk_bytes;
}

void ProbeRuntime::ConvertChunk(Chunk* c, v1::ProbeMessage* msg) {
  if (stream_ == nullptr || send_.generation == 0 ||
      c->generation != send_.generation) {
    // Not connected, or a record that raced with its capture's stop.
    // Counted in records (an operator is two: begin and end).
    dropped_send_total_.fetch_add(c->num_records);
    send_.dropped_send +=
        (c->generation == send_.generation) ? c->num_records : 0;
  } else {
    {
      MutexLock lock(&names_mu_);
      if (step_name_changed_) {
        converter_.set_step_name(step_name_);
        step_name_changed_ = false;
      }
    }
    converter_.set_input_signatures(
        collector_signatures_.load(std::memory_order_relaxed));
    send_.events_sent += converter_.Convert(*c, msg->mutable_batch());
  }
  recorder_.Release(c);
}

void ProbeRuntime::Process(QueueItem& item) {
  if (item.message == nullptr) return;
  v1::ProbeMessage& m = *item.message;
  if (m.has_capture_started()) {
    SendStateIfChanged(/*force=*/false);  // Identity first: it names tracks.
    send_ = SendState{};
    converter_.ResetOpen();
    if (stream_ != nullptr && Send(m)) {
      recorder_.Prefill(kPrefillChunks);
      send_.generation = item.generation;
      send_.capture_id = m.capture_started().capture_id();
      SendRingDump(item.generation);
    } else {
      VP_PROBE_LOG_ONCE(ProbeLogLevel::kDebug,
                        "a capture started while the collector was not "
                        "connected; its events are dropped");
    }
  } else if (m.has_capture_finished()) {
    const uint64_t full = recorder_.TakeDroppedBufferFull();
    dropped_full_total_.fetch_add(full);
    chunk_batch_.reset();  // Its retained events: up to a batch's worth.
    recorder_.TrimPool();
    if (send_.generation != item.generation || stream_ == nullptr) {
      send_ = SendState{};
      return;
    }
    v1::ProbeMessage batch;
    send_.events_sent +=
        converter_.Flush(m.capture_finished().end_ns(), batch.mutable_batch());
    DrainGpuEvents(&batch);
    SendBatch(&batch);
    v1::CaptureFinished* f = m.mutable_capture_finished();
    f->set_events_recorded(send_.events_sent);
    v1::DropCounters* d = f->mutable_drops();
    d->set_events_dropped_buffer_full(full);
    d->set_events_dropped_send(send_.dropped_send);
    {
      MutexLock lock(&gpu_mu_);
      d->set_cupti_records_dropped(tracer_records_dropped_ + gpu_dropped_);
      d->set_cupti_buffers_dropped(tracer_buffers_dropped_);
      tracer_records_dropped_ = tracer_buffers_dropped_ = gpu_dropped_ = 0;
    }
    if (full > 0) {
      ProbeLog(ProbeLogLevel::kInfo,
               absl::StrCat("capture ", f->capture_id(), ": ", full,
                            " events dropped (VLLM_PROFILER_MAX_BUFFER_MB "
                            "reached)"));
    }
    Send(m);
    send_ = SendState{};
  } else {
    Send(m);
  }
}

void ProbeRuntime::SenderLoop() {
  // Named so that top -H, perf and py-spy show what the thread is.
  pthread_setname_np(pthread_self(), "vp-sender");
  // Low priority: converting and sending uses CPU the inference step may
  // need; with nice 10 it mostly runs on idle cycles (bounded memory makes
  // falling behind safe: the record path drops and counts).
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  try {
    while (true) {
      const bool stopping = stop_.load();
      if (stream_ != nullptr && stream_broken_.load()) {
        ProbeLog(ProbeLogLevel::kInfo,
                 absl::StrCat("lost the connection to the collector at ",
                              transport_->target(), "; reconnecting"));
        outage_logged_ = true;
        CloseStream(false);
        next_connect_ = absl::Now() + backoff_;
      }
      if (stream_ == nullptr && !stopping && absl::Now() >= next_connect_) {
        TryConnect();
      }
      SendStateIfChanged(/*force=*/false);
      MaybeSendStepSummaries();
      std::deque<QueueItem> items =
          recorder_.TakeQueued(stopping ? absl::ZeroDuration() : options_.tick);
      // Every record taken was written before this anchor.
      ticks_.Anchor();
      const size_t chunk_bytes = ProcessAll(items);
      if (send_.generation != 0) {
        v1::ProbeMessage batch;
        DrainGpuEvents(&batch);
        SendBatch(&batch);
      }
      if (!stopping) {
        MutexLock lock(&control_mu_);
        if (!shut_down_) {
          const int64_t now = clock_->MonotonicNs();
          Apply(controller_.OnTick(now),
                last_step_.load(std::memory_order_relaxed));
          if (deferred_.message != nullptr && now > deferred_.deadline_ns) {
            ReleaseDeferredLocked(
                "the torch profiler's operator events did not arrive within "
                "30 s of the capture's end; the trace has none");
          }
        }
      }
      if (stopping && items.empty()) break;
      if (!stopping && chunk_bytes > 0 &&
          chunk_bytes < kMaxBatchRecordBytes / 4) {
        // Records are streaming in slowly: let more gather before the next
        // batch (fewer, larger messages; memory stays bounded by the
        // recorder's budget, and a stop is at most this much later).
        absl::SleepFor(options_.batch_linger);
      }
    }
    CloseStream(true);
  } catch (...) {
    ProbeLog(ProbeLogLevel::kInfo,
             "internal error in the sender thread; the probe stops sending");
  }
  MutexLock lock(&thread_mu_);
  sender_exited_ = true;
  thread_cv_.SignalAll();
}

void ProbeRuntime::Shutdown(absl::Duration timeout) {
  {
    MutexLock lock(&control_mu_);
    if (shut_down_) return;
    if (controller_.active()) {
      CaptureSpec spec = *controller_.active_spec();
      controller_.OnStopCommand(spec.capture_id);
      Apply(controller_.OnTick(clock_->MonotonicNs()),
            last_step_.load(std::memory_order_relaxed));
    }
    ReleaseDeferredLocked(deferred_.message == nullptr
                              ? ""
                              : "the process exited before the torch "
                                "profiler's operator events were converted");
    StopFlightGpuLocked();
    shut_down_ = true;
  }
  stop_.store(true);
  recorder_.Wake();
  bool exited;
  {
    MutexLock lock(&thread_mu_);
    // WaitFor checks the predicate with thread_mu_ held.
    exited = thread_cv_.WaitFor(
        &thread_mu_, timeout,
        [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return sender_exited_; });
  }
  if (sender_.joinable()) {
    if (exited) {
      sender_.join();
    } else {
      ProbeLog(ProbeLogLevel::kDebug, "sender did not stop in time");
      sender_.detach();
    }
  }
}

ProbeRuntime::Stats ProbeRuntime::stats() const {
  Stats s;
  s.events_recorded = events_sent_total_.load();
  s.events_dropped_buffer_full = dropped_full_total_.load();
  s.events_dropped_send = dropped_send_total_.load();
  s.captures_started = captures_started_.load();
  s.captures_finished = captures_finished_.load();
  s.batches_sent = batches_sent_.load();
  s.connected = connected_.load();
  s.peak_buffer_bytes = recorder_.peak_bytes_in_use();
  return s;
}

}  // namespace vllm_profiler::probe
