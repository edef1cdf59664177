#include "collector/probe_service.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/codegen/rpc_service_method.h>
#include <grpcpp/support/method_handler.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "google/protobuf/arena.h"

namespace vllm_profiler {
namespace collector {
namespace {

constexpr char kConnectMethod[] = "/vllm_profiler.v1.ProbeService/Connect";
constexpr size_t kArenaInitialBlock = 1 << 20;

void AddDrops(const v1::DropCounters& from, v1::DropCounters* to) {
  to->set_events_dropped_buffer_full(to->events_dropped_buffer_full() +
                                     from.events_dropped_buffer_full());
  to->set_events_dropped_send(to->events_dropped_send() +
                              from.events_dropped_send());
  to->set_cupti_records_dropped(to->cupti_records_dropped() +
                                from.cupti_records_dropped());
  to->set_cupti_buffers_dropped(to->cupti_buffers_dropped() +
                                from.cupti_buffers_dropped());
}

uint64_t TotalDrops(const v1::DropCounters& d) {
  return d.events_dropped_buffer_full() + d.events_dropped_send() +
         d.cupti_records_dropped();
}

}  // namespace

struct ProbeServiceImpl::Connection {
  uint64_t id = 0;
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
}

ProbeServiceImpl::~ProbeServiceImpl() = default;

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

grpc::Status ProbeServiceImpl::Connect(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream) {
  auto conn = std::make_shared<Connection>();
  conn->id = next_connection_id_.fetch_add(1);
  conn->connected = absl::Now();
  {
    MutexLock lock(&conn->write_mu);
    conn->stream = stream;
  }
  const std::string peer = context->peer();
  ProbeStream ps(options_.stream);
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
  absl::flat_hash_map<std::string, std::shared_ptr<Capture>> open;
  absl::Status error;
  bool registered = false;

  while (stream->Read(&bb)) {
    const size_t wire_bytes = bb.Length();
    arena.Reset();
    v1::ProbeMessage& message =
        *google::protobuf::Arena::CreateMessage<v1::ProbeMessage>(&arena);
    {
      grpc::ProtoBufferReader reader(&bb);
      if (!reader.status().ok() || !message.ParseFromZeroCopyStream(&reader)) {
        error = MalformedMessageError(wire_bytes);
        break;
      }
    }
    bb.Clear();
    error = ps.Accept(message, wire_bytes);
    if (!error.ok()) break;
    switch (message.payload_case()) {
      case v1::ProbeMessage::kHello: {
        conn->pid = ps.pid();
        conn->hello = ps.hello();
        {
          MutexLock lock(&conn->stat_mu);
          conn->current_hello = ps.hello();
        }
        {
          MutexLock lock(&mu_);
          connections_[conn->id] = conn;
        }
        registered = true;
        VP_LOG(INFO) << "probe connected: pid " << conn->pid << " ("
                     << conn->hello.process_name() << ", rank "
                     << conn->hello.rank() << ") from " << peer;
        v1::CollectorCommand welcome;
        welcome.mutable_welcome()->set_collector_version(
            options_.collector_version);
        welcome.mutable_welcome()->set_max_batch_bytes(
            options_.stream.max_batch_bytes);
        Write(*conn, welcome);
        break;
      }
      case v1::ProbeMessage::kCaptureStarted: {
        const v1::CaptureStarted& started = message.capture_started();
        open[started.capture_id()] = manager_->Join(ps, started);
        MutexLock lock(&conn->stat_mu);
        conn->capture_id = started.capture_id();
        break;
      }
      case v1::ProbeMessage::kBatch: {
        const v1::EventBatch& batch = message.batch();
        auto it = open.find(batch.capture_id());
        if (it != open.end()) it->second->WriteBatch(ps, batch);
        const uint64_t n = static_cast<uint64_t>(batch.events_size());
        conn->events.fetch_add(n, std::memory_order_relaxed);
        conn->batches.fetch_add(1, std::memory_order_relaxed);
        events_received_.fetch_add(n, std::memory_order_relaxed);
        batches_received_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      case v1::ProbeMessage::kCaptureFinished: {
        const v1::CaptureFinished& finished = message.capture_finished();
        auto it = open.find(finished.capture_id());
        if (it != open.end()) {
          manager_->Finish(it->second, ps.pid(), finished);
          open.erase(it);
        }
        events_dropped_.fetch_add(TotalDrops(finished.drops()));
        MutexLock lock(&conn->stat_mu);
        AddDrops(finished.drops(), &conn->drops);
        if (!finished.gpu_activity_note().empty()) {
          conn->gpu_note = finished.gpu_activity_note();
        }
        if (conn->capture_id == finished.capture_id()) conn->capture_id.clear();
        break;
      }
      case v1::ProbeMessage::kState: {
        const v1::ProbeState& state = message.state();
        if (!state.idle_reason().empty()) {
          VP_LOG(INFO) << "probe pid " << conn->pid
                       << " is idle: " << state.idle_reason();
        }
        MutexLock lock(&conn->stat_mu);
        conn->current_hello = ps.hello();
        conn->state = state;
        break;
      }
      case v1::ProbeMessage::PAYLOAD_NOT_SET:
        break;
    }
  }

  // The stream is over: no more command writes.
  {
    MutexLock lock(&conn->write_mu);
    conn->stream = nullptr;
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
  for (auto& [id, capture] : open) {
    manager_->Disconnect(capture, ps.pid(), reason);
  }
  if (registered) {
    {
      MutexLock lock(&mu_);
      connections_.erase(conn->id);
    }
    manager_->ProbeGone(conn->pid);
    VP_LOG(INFO) << "probe disconnected: pid " << conn->pid << " (" << reason
                 << ")";
  }
  if (!error.ok()) {
    streams_rejected_.fetch_add(1);
    VP_LOG(WARNING) << "rejected probe stream from " << peer
                    << (ps.has_hello() ? absl::StrCat(" (pid ", ps.pid(), ")")
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

}  // namespace collector
}  // namespace vllm_profiler
