#include "collector/probe_service.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/codegen/rpc_service_method.h>
#include <grpcpp/support/method_handler.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <malloc.h>

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/saturating.h"
#include "google/protobuf/arena.h"

namespace vllm_profiler::collector {
namespace {

constexpr char kConnectMethod[] = "/vllm_profiler.v1.ProbeService/Connect";
constexpr size_t kArenaInitialBlock = 1 << 20;

void AddDrops(const v1::DropCounters& from, v1::DropCounters* to) {
  to->set_events_dropped_buffer_full(SaturatingAdd(
      to->events_dropped_buffer_full(), from.events_dropped_buffer_full()));
  to->set_events_dropped_send(
      SaturatingAdd(to->events_dropped_send(), from.events_dropped_send()));
  to->set_cupti_records_dropped(
      SaturatingAdd(to->cupti_records_dropped(), from.cupti_records_dropped()));
  to->set_cupti_buffers_dropped(
      SaturatingAdd(to->cupti_buffers_dropped(), from.cupti_buffers_dropped()));
}

uint64_t TotalDrops(const v1::DropCounters& d) {
  return SaturatingAdd(
      SaturatingAdd(d.events_dropped_buffer_full(), d.events_dropped_send()),
      d.cupti_records_dropped());
}

}  // namespace

struct ProbeServiceImpl::Connection {
  uint64_t id = 0;
  // Set by the watchdog before it cancels a stream that sent no Hello.
  std::atomic<bool> hello_timed_out{false};
  int64_t pid = 0;
  v1::Hello hello;
  absl::Time connected;
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> batches{0};

  Mutex stat_mu;
  std::string capture_id ABSL_GUARDED_BY(stat_mu);
  v1::DropCounters drops ABSL_GUARDED_BY(stat_mu);
  std::string gpu_note ABSL_GUARDED_BY(stat_mu);
  // Hello as updated by ProbeState messages, and the latest state.
  v1::Hello current_hello ABSL_GUARDED_BY(stat_mu);
  v1::ProbeState state ABSL_GUARDED_BY(stat_mu);

  // Serialises writes; `stream` is null once the handler is returning.
  Mutex write_mu;
  grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream
      ABSL_GUARDED_BY(write_mu) = nullptr;
};

ProbeServiceImpl::ProbeServiceImpl(Options options, CaptureManager* manager)
    : options_(std::move(options)), manager_(manager) {
  AddMethod(new grpc::internal::RpcServiceMethod(
      kConnectMethod, grpc::internal::RpcMethod::BIDI_STREAMING,
      new grpc::internal::BidiStreamingHandler<
          ProbeServiceImpl, grpc::ByteBuffer, grpc::ByteBuffer>(
          [](ProbeServiceImpl* service, grpc::ServerContext* context,
             grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>*
                 stream) { return service->Connect(context, stream); },
          this)));
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

ProbeServiceImpl::~ProbeServiceImpl() {
  {
    MutexLock lock(&wd_mu_);
    wd_stop_ = true;
    wd_cv_.SignalAll();
  }
  watchdog_.join();
}

void ProbeServiceImpl::ArmHelloDeadline(Connection* c,
                                        grpc::ServerContext* context) {
  MutexLock lock(&wd_mu_);
  awaiting_hello_[c->id] =
      Pending{absl::Now() + options_.hello_timeout, context, c};
  wd_cv_.SignalAll();
}

void ProbeServiceImpl::DisarmHelloDeadline(Connection* c) {
  MutexLock lock(&wd_mu_);
  awaiting_hello_.erase(c->id);
}

void ProbeServiceImpl::WatchdogLoop() {
  MutexLock lock(&wd_mu_);
  while (!wd_stop_) {
    const absl::Time now = absl::Now();
    absl::Time next = now + absl::Seconds(1);
    for (auto it = awaiting_hello_.begin(); it != awaiting_hello_.end();) {
      if (it->second.deadline <= now) {
        // Under wd_mu_: the stream's handler cannot return (it disarms
        // under wd_mu_ first), so `context` is alive. TryCancel does not
        // call back into us.
        it->second.connection->hello_timed_out.store(true);
        it->second.context->TryCancel();
        it = awaiting_hello_.erase(it);
      } else {
        next = std::min(next, it->second.deadline);
        ++it;
      }
    }
    wd_cv_.WaitWithDeadline(&wd_mu_, next);
  }
}

void ProbeServiceImpl::StreamEnded() {
  const int left = active_streams_.fetch_sub(1) - 1;
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t last = last_trim_ns_.load();
  if (left == 0 || (now - last > 1000000000 &&
                    last_trim_ns_.compare_exchange_strong(last, now))) {
    last_trim_ns_.store(now);
    // The per-stream arenas and gRPC buffers are freed by now; without this
    // glibc keeps them in its arenas and the RSS of a flood stays.
    ::malloc_trim(0);
  }
}

bool ProbeServiceImpl::Write(Connection& c,
                             const v1::CollectorCommand& command) {
  grpc::ByteBuffer bb;
  bool own = false;
  if (!grpc::SerializationTraits<v1::CollectorCommand>::Serialize(command, &bb,
                                                                  &own)
           .ok()) {
    return false;
  }
  MutexLock lock(&c.write_mu);
  if (c.stream == nullptr) return false;
  return c.stream->Write(bb);
}

// One Connect stream's state, owned by its handler thread.
struct ProbeServiceImpl::Session {
  explicit Session(const ProbeStream::Options& options) : ps(options) {}

  std::string peer;
  std::shared_ptr<Connection> conn;
  ProbeStream ps;
  // The captures this stream started and has not finished, by capture id.
  absl::flat_hash_map<std::string, std::shared_ptr<Capture>> open;
  bool registered = false;  // A valid Hello arrived.
};

grpc::Status ProbeServiceImpl::Connect(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream) {
  Session s(options_.stream);
  s.peer = context->peer();
  if (active_streams_.fetch_add(1) >= options_.max_streams) {
    return Refuse(s.peer);
  }
  s.conn = std::make_shared<Connection>();
  s.conn->id = next_connection_id_.fetch_add(1);
  s.conn->connected = absl::Now();
  {
    MutexLock lock(&s.conn->write_mu);
    s.conn->stream = stream;
  }
  ArmHelloDeadline(s.conn.get(), context);
  const absl::Status error = ReadMessages(s, stream);
  if (options_.flight != nullptr) options_.flight->OnProbeGone(s.conn->id);

  // The stream is over: no more command writes, no cancel.
  DisarmHelloDeadline(s.conn.get());
  {
    MutexLock lock(&s.conn->write_mu);
    s.conn->stream = nullptr;
  }
  return EndStream(s, context, error);
}

grpc::Status ProbeServiceImpl::Refuse(const std::string& peer) {
  streams_refused_.fetch_add(1);
  StreamEnded();
  VP_LOG_EVERY_N(WARNING, 100)
      << "refused probe stream from " << peer << ": " << options_.max_streams
      << " streams open (--max_probe_streams)";
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat("collector is serving its limit of ", options_.max_streams,
                   " probe streams (--max_probe_streams); retry later"));
}

absl::Status ProbeServiceImpl::ReadMessages(
    Session& s,
    grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream) {
  // Messages are parsed into an arena that is reset after each one: a
  // batch's thousands of Event objects cost bump allocations instead of
  // malloc/free pairs (clearing a oneof frees its message). The first
  // block is kept across resets.
  std::unique_ptr<char[]> arena_block(new char[kArenaInitialBlock]);
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = arena_block.get();
  arena_options.initial_block_size = kArenaInitialBlock;
  arena_options.max_block_size = 4 << 20;
  google::protobuf::Arena arena(arena_options);
  grpc::ByteBuffer bb;
  while (stream->Read(&bb)) {
    const size_t wire_bytes = bb.Length();
    arena.Reset();
    v1::ProbeMessage& message =
        *google::protobuf::Arena::CreateMessage<v1::ProbeMessage>(&arena);
    {
      grpc::ProtoBufferReader reader(&bb);
      if (!reader.status().ok() || !message.ParseFromZeroCopyStream(&reader)) {
        return MalformedMessageError(wire_bytes);
      }
    }
    bb.Clear();
    absl::Status error = s.ps.Accept(message, wire_bytes);
    if (!error.ok()) return error;
    Dispatch(s, message);
  }
  return absl::OkStatus();
}

void ProbeServiceImpl::Dispatch(Session& s, const v1::ProbeMessage& message) {
  switch (message.payload_case()) {
    case v1::ProbeMessage::kHello:
      OnHello(s);
      break;
    case v1::ProbeMessage::kCaptureStarted:
      OnCaptureStarted(s, message.capture_started());
      break;
    case v1::ProbeMessage::kBatch:
      OnBatch(s, message.batch());
      break;
    case v1::ProbeMessage::kCaptureFinished:
      OnCaptureFinished(s, message.capture_finished());
      break;
    case v1::ProbeMessage::kState: {
      const v1::ProbeState& state = message.state();
      if (!state.idle_reason().empty()) {
        VP_LOG(INFO) << "probe pid " << s.conn->pid
                     << " is idle: " << state.idle_reason();
      }
      MutexLock lock(&s.conn->stat_mu);
      s.conn->current_hello = s.ps.hello();
      s.conn->state = state;
      break;
    }
    case v1::ProbeMessage::kStepSummaries:
      OnStepSummaries(s, message.step_summaries());
      break;
    case v1::ProbeMessage::PAYLOAD_NOT_SET:
      break;
  }
}

void ProbeServiceImpl::OnHello(Session& s) {
  Connection& conn = *s.conn;
  DisarmHelloDeadline(&conn);
  conn.pid = s.ps.pid();
  conn.hello = s.ps.hello();
  {
    MutexLock lock(&conn.stat_mu);
    conn.current_hello = s.ps.hello();
  }
  {
    MutexLock lock(&mu_);
    connections_[conn.id] = s.conn;
  }
  s.registered = true;
  VP_LOG(INFO) << "probe connected: pid " << conn.pid << " ("
               << conn.hello.process_name() << ", rank " << conn.hello.rank()
               << ") from " << s.peer;
  v1::CollectorCommand welcome;
  welcome.mutable_welcome()->set_collector_version(options_.collector_version);
  welcome.mutable_welcome()->set_max_batch_bytes(
      options_.stream.max_batch_bytes);
  welcome.mutable_welcome()->set_input_signatures(true);
  Write(conn, welcome);
}

void ProbeServiceImpl::OnCaptureStarted(Session& s,
                                        const v1::CaptureStarted& started) {
  std::shared_ptr<Capture> capture = manager_->Join(s.ps, started);
  if (capture == nullptr) return;  // Refused: its batches are ignored.
  s.open[started.capture_id()] = std::move(capture);
  MutexLock lock(&s.conn->stat_mu);
  s.conn->capture_id = started.capture_id();
}

void ProbeServiceImpl::OnBatch(Session& s, const v1::EventBatch& batch) {
  auto it = s.open.find(batch.capture_id());
  if (it != s.open.end()) it->second->WriteBatch(s.ps, batch);
  const uint64_t n = static_cast<uint64_t>(batch.events_size());
  SaturatingAdd(&s.conn->events, n);
  SaturatingAdd(&s.conn->batches, 1);
  SaturatingAdd(&events_received_, n);
  SaturatingAdd(&batches_received_, 1);
}

void ProbeServiceImpl::OnCaptureFinished(Session& s,
                                         const v1::CaptureFinished& finished) {
  auto it = s.open.find(finished.capture_id());
  if (it != s.open.end()) {
    manager_->Finish(it->second, s.ps.pid(), finished,
                     s.ps.hello().process_uid());
    s.open.erase(it);
  }
  SaturatingAdd(&events_dropped_, TotalDrops(finished.drops()));
  Connection& conn = *s.conn;
  MutexLock lock(&conn.stat_mu);
  AddDrops(finished.drops(), &conn.drops);
  if (!finished.gpu_activity_note().empty()) {
    conn.gpu_note = finished.gpu_activity_note();
  }
  if (conn.capture_id == finished.capture_id()) conn.capture_id.clear();
}

void ProbeServiceImpl::OnStepSummaries(Session& s,
                                       const v1::StepSummaries& summaries) {
  if (options_.flight == nullptr) return;
  FlightRecorder::Source source;
  source.key = s.conn->id;
  source.pid = s.ps.pid();
  source.rank = s.ps.hello().rank();
  source.name = s.ps.hello().process_name();
  source.mono_to_wall_ns = s.ps.ToWallNs(0);
  options_.flight->OnStepSummaries(source, summaries);
}

grpc::Status ProbeServiceImpl::EndStream(Session& s,
                                         grpc::ServerContext* context,
                                         const absl::Status& error) {
  struct EndGuard {
    ProbeServiceImpl* self;
    ~EndGuard() { self->StreamEnded(); }
  } end_guard{this};
  if (s.conn->hello_timed_out.load() && !s.registered) {
    hello_timeouts_.fetch_add(1);
    VP_LOG_EVERY_N(WARNING, 100)
        << "cancelled probe stream from " << s.peer << ": no Hello within "
        << absl::FormatDuration(options_.hello_timeout);
    return grpc::Status(
        grpc::StatusCode::DEADLINE_EXCEEDED,
        absl::StrCat("no Hello within ",
                     absl::FormatDuration(options_.hello_timeout)));
  }
  std::string reason;
  if (!error.ok()) {
    reason = std::string(error.message());
  } else if (shutting_down_.load()) {
    reason = "collector shutting down";
  } else if (context->IsCancelled()) {
    reason = "stream cancelled";
  } else {
    reason = "stream closed by the probe";
  }
  for (auto& [id, capture] : s.open) {
    manager_->Disconnect(capture, s.ps.pid(), reason,
                         s.ps.hello().process_uid());
  }
  if (s.registered) {
    {
      MutexLock lock(&mu_);
      connections_.erase(s.conn->id);
    }
    manager_->ProbeGone(s.conn->pid);
    VP_LOG(INFO) << "probe disconnected: pid " << s.conn->pid << " (" << reason
                 << ")";
  }
  if (!error.ok()) {
    streams_rejected_.fetch_add(1);
    VP_LOG(WARNING) << "rejected probe stream from " << s.peer
                    << (s.ps.has_hello()
                            ? absl::StrCat(" (pid ", s.ps.pid(), ")")
                            : std::string())
                    << ": " << error.message();
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        std::string(error.message()));
  }
  return grpc::Status::OK;
}

std::vector<v1::ProbeStatus> ProbeServiceImpl::Probes() const {
  std::vector<std::shared_ptr<Connection>> conns;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, c] : connections_) conns.push_back(c);
  }
  std::vector<v1::ProbeStatus> out;
  for (const auto& c : conns) {
    v1::ProbeStatus s;
    s.set_connected_unix_ms(absl::ToUnixMillis(c->connected));
    s.set_events_received(c->events.load(std::memory_order_relaxed));
    s.set_batches_received(c->batches.load(std::memory_order_relaxed));
    MutexLock lock(&c->stat_mu);
    *s.mutable_hello() = c->current_hello;
    *s.mutable_state() = c->state;
    s.set_capture_id(c->capture_id);
    *s.mutable_drops() = c->drops;
    s.set_gpu_activity_note(c->gpu_note);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<int64_t> ProbeServiceImpl::ConnectedPids() const {
  MutexLock lock(&mu_);
  std::vector<int64_t> out;
  for (const auto& [id, c] : connections_) out.push_back(c->pid);
  return out;
}

size_t ProbeServiceImpl::probes_connected() const {
  MutexLock lock(&mu_);
  return connections_.size();
}

std::vector<int64_t> ProbeServiceImpl::SendCommand(
    const std::vector<int64_t>& pids, const v1::CollectorCommand& command) {
  std::vector<std::shared_ptr<Connection>> targets;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, c] : connections_) {
      if (std::find(pids.begin(), pids.end(), c->pid) != pids.end()) {
        targets.push_back(c);
      }
    }
  }
  // Not under mu_: a write can block on flow control.
  std::vector<int64_t> reached;
  for (const auto& c : targets) {
    if (Write(*c, command)) reached.push_back(c->pid);
  }
  return reached;
}

}  // namespace vllm_profiler::collector
