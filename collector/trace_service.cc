#include "collector/trace_service.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/gzip_file.h"
#include "common/logging.h"

namespace vllm_profiler::collector {
namespace {

constexpr uint32_t kDefaultChunk = 1 << 20;
constexpr uint32_t kMinChunk = 4 << 10;
// Below gRPC's default 4 MiB client receive limit.
constexpr uint32_t kMaxChunk = 3 << 20;

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

TraceServiceImpl::TraceServiceImpl(Options options, TraceStore* store,
                                   CaptureManager* manager,
                                   ProbeServiceImpl* probes)
    : options_(std::move(options)),
      store_(store),
      manager_(manager),
      probes_(probes) {}

grpc::Status TraceServiceImpl::ListTraces(grpc::ServerContext*,
                                          const v1::ListTracesRequest*,
                                          v1::ListTracesResponse* response) {
  for (v1::TraceInfo& info : store_->List()) {
    *response->add_traces() = std::move(info);
  }
  return grpc::Status::OK;
}

grpc::Status TraceServiceImpl::GetTrace(
    grpc::ServerContext* context, const v1::GetTraceRequest* request,
    grpc::ServerWriter<v1::TraceChunk>* writer) {
  v1::TraceInfo info;
  absl::StatusOr<std::unique_ptr<ReadableFile>> file =
      store_->Open(request->id(), &info);
  if (!file.ok()) return ToGrpcStatus(file.status());
  uint32_t chunk =
      request->chunk_bytes() == 0 ? kDefaultChunk : request->chunk_bytes();
  chunk = std::clamp(chunk, kMinChunk, kMaxChunk);
  const bool want_gzip =
      request->encoding() == v1::GetTraceRequest::ENCODING_GZIP;
  std::unique_ptr<GzipCompressor> compress;
  std::unique_ptr<GzipDecompressor> decompress;
  if (want_gzip && !info.gzip()) compress = std::make_unique<GzipCompressor>();
  if (!want_gzip && info.gzip()) {
    decompress = std::make_unique<GzipDecompressor>();
  }

  std::string raw(chunk, '\0');
  std::string out;      // Converted bytes not sent yet.
  uint64_t offset = 0;  // Of the bytes sent.
  bool eof = false;
  v1::TraceChunk msg;
  while (!eof || !out.empty()) {
    if (context->IsCancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    }
    while (!eof && out.size() < chunk) {
      absl::StatusOr<size_t> n = (*file)->Read(&raw[0], raw.size());
      if (!n.ok()) return ToGrpcStatus(n.status());
      absl::string_view piece(raw.data(), *n);
      if (*n == 0) eof = true;
      absl::Status s;
      if (compress != nullptr) {
        s = compress->Compress(piece, eof, &out);
      } else if (decompress != nullptr) {
        s = decompress->Decompress(piece, &out);
      } else {
        out.append(piece.data(), piece.size());
      }
      if (!s.ok()) return ToGrpcStatus(s);
    }
    const size_t n = std::min<size_t>(out.size(), chunk);
    msg.set_data(out.data(), n);
    msg.set_offset(offset);
    out.erase(0, n);
    msg.set_last(eof && out.empty());
    offset += n;
    grpc::WriteOptions wo;
    if (!writer->Write(msg, wo)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
  }
  return grpc::Status::OK;
}

grpc::Status TraceServiceImpl::StartCapture(
    grpc::ServerContext* context, const v1::StartCaptureRequest* request,
    v1::StartCaptureResponse* response) {
  std::vector<int64_t> connected = probes_->ConnectedPids();
  if (connected.empty()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no probes are connected");
  }
  std::vector<int64_t> pids;
  if (request->pids().empty()) {
    pids = connected;
  } else {
    for (int64_t pid : request->pids()) {
      if (std::find(connected.begin(), connected.end(), pid) ==
          connected.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            absl::StrCat("no connected probe with pid ", pid));
      }
      pids.push_back(pid);
    }
  }
  v1::CaptureConfig config = request->config();
  if (config.num_steps() == 0 && config.duration_ms() == 0) {
    config.set_num_steps(5);
  }
  // A config that switches every recording off is what grpcurl sends when
  // the user gives only a step count: record everything then.
  if (!config.record_shapes() && !config.gpu_activity() && !config.cpu_ops()) {
    config.set_record_shapes(true);
    config.set_gpu_activity(true);
    config.set_cpu_ops(true);
  }
  std::string id = manager_->CreateCommandCapture(pids, config);
  v1::CollectorCommand command;
  command.mutable_start_capture()->set_capture_id(id);
  *command.mutable_start_capture()->mutable_config() = config;
  std::vector<int64_t> reached = probes_->SendCommand(pids, command);
  for (int64_t pid : pids) {
    if (std::find(reached.begin(), reached.end(), pid) == reached.end()) {
      manager_->ProbeGone(pid);  // Went away meanwhile.
    }
  }
  VP_LOG(INFO) << "capture " << id << " requested for " << reached.size()
               << " probe(s), " << config.num_steps() << " steps";
  response->set_capture_id(id);
  for (int64_t pid : reached) response->add_pids(pid);
  if (!request->wait()) return grpc::Status::OK;

  absl::Time deadline =
      absl::Now() + (request->timeout_ms() != 0
                         ? absl::Milliseconds(request->timeout_ms())
                         : options_.default_wait);
  if (context->deadline() != std::chrono::system_clock::time_point::max()) {
    deadline = std::min(deadline, absl::FromChrono(context->deadline()));
  }
  std::optional<v1::TraceInfo> info = manager_->Wait(id, deadline);
  if (info.has_value()) *response->mutable_trace() = *info;
  return grpc::Status::OK;
}

grpc::Status TraceServiceImpl::GetStatus(grpc::ServerContext*,
                                         const v1::GetStatusRequest*,
                                         v1::GetStatusResponse* response) {
  response->set_collector_version(options_.collector_version);
  response->set_injection(options_.injection);
  response->set_realtime_ns(absl::GetCurrentTimeNanos());
  for (v1::ProbeStatus& p : probes_->Probes()) {
    *response->add_probes() = std::move(p);
  }
  for (v1::CaptureStatus& c : manager_->Status()) {
    *response->add_captures() = std::move(c);
  }
  *response->mutable_disk() = store_->Disk();
  response->set_events_received(probes_->events_received());
  response->set_events_dropped(probes_->events_dropped());
  response->set_traces_written(manager_->traces_written());
  return grpc::Status::OK;
}

grpc::Status TraceServiceImpl::DeleteTrace(
    grpc::ServerContext*, const v1::DeleteTraceRequest* request,
    v1::DeleteTraceResponse*) {
  return ToGrpcStatus(store_->Delete(request->id()));
}

}  // namespace vllm_profiler::collector
