#include "collector/collector_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/healthcheck.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector {
namespace {

// The flight recorder reaches the probes through the probe service.
class ServiceProbes final : public FlightRecorder::Probes {
 public:
  explicit ServiceProbes(ProbeServiceImpl* service) : service_(service) {}
  std::vector<int64_t> ConnectedPids() const override {
    return service_->ConnectedPids();
  }
  std::vector<int64_t> SendCommand(
      const std::vector<int64_t>& pids,
      const v1::CollectorCommand& command) override {
    return service_->SendCommand(pids, command);
  }

 private:
  ProbeServiceImpl* const service_;
};

std::unique_ptr<FlightRecorder::Probes> NewFlightProbes(
    ProbeServiceImpl* service) {
  return std::make_unique<ServiceProbes>(service);
}

}  // namespace

absl::Status ParseHostPort(const std::string& address, std::string* host,
                           uint16_t* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\" is not host:port"));
  }
  *host = address.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  uint32_t p;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &p) || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\" has an invalid port"));
  }
  *port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

CollectorServer::CollectorServer(Options options)
    : options_(std::move(options)) {}

CollectorServer::~CollectorServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<CollectorServer>> CollectorServer::Start(
    Options options) {
  std::unique_ptr<CollectorServer> server(
      new CollectorServer(std::move(options)));
  absl::Status s = server->StartImpl();
  if (!s.ok()) return s;
  return server;
}

absl::Status CollectorServer::StartImpl() {
  Filesystem* fs = options_.fs != nullptr ? options_.fs : Filesystem::Default();
  store_ = std::make_unique<TraceStore>(options_.store, fs);
  absl::Status s = store_->Init();
  if (!s.ok()) {
    VP_LOG(ERROR) << "trace directory unusable, captures will fail until it "
                     "is fixed: "
                  << s.message();
  }
  CaptureManager::Options mo;
  mo.window_linger = options_.window_linger;
  mo.probe_eviction_min_age = options_.probe_eviction_min_age;
  mo.capture.collector_version = kCollectorVersion;
  manager_ = std::make_unique<CaptureManager>(mo, store_.get());

  flight_ = std::make_unique<FlightRecorder>(options_.flight, manager_.get());
  ProbeServiceImpl::Options po;
  po.flight = flight_.get();
  po.stream = options_.stream;
  po.collector_version = kCollectorVersion;
  po.max_streams = std::max(1, options_.max_probe_streams);
  po.hello_timeout = options_.hello_timeout;
  probe_service_ = std::make_unique<ProbeServiceImpl>(po, manager_.get());
  flight_probes_ = NewFlightProbes(probe_service_.get());
  flight_->set_probes(flight_probes_.get());

  s = StartProbeServer();
  if (s.ok()) s = StartUserGrpc();
  if (s.ok()) s = StartHttp();
  if (!s.ok()) return s;
  LogListening();
  // After the start-up line, so whoever waits for the port file also
  // finds the line in the log.
  if (!options_.port_file.empty()) {
    s = Filesystem::Default()->WriteFileAtomically(
        options_.port_file, nlohmann::ordered_json{{"grpc_port", grpc_port_},
                                                   {"http_port", http_->port()}}
                                    .dump() +
                                "\n");
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// The ProbeService on the Unix socket and/or TCP address.
absl::Status CollectorServer::StartProbeServer() {
  if (options_.probe_socket.empty() && options_.probe_tcp_address.empty()) {
    return absl::InvalidArgumentError("no probe listener configured");
  }
  grpc::ServerBuilder probe_builder;
  if (!options_.probe_socket.empty()) {
    const std::string& path = options_.probe_socket;
    size_t slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      absl::Status d = Filesystem::Default()->CreateDirs(path.substr(0, slash));
      if (!d.ok()) return d;
    }
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "--probe_socket ", path, " exists and is not a socket"));
      }
      ::unlink(path.c_str());  // Stale socket of an earlier run.
    }
    probe_builder.AddListeningPort("unix:" + path,
                                   grpc::InsecureServerCredentials());
  }
  if (!options_.probe_tcp_address.empty()) {
    probe_builder.AddListeningPort(options_.probe_tcp_address,
                                   grpc::InsecureServerCredentials());
  }
  // Room above max_batch_bytes so an oversized batch reaches ProbeStream
  // and gets its INVALID_ARGUMENT naming both sizes; beyond this gRPC
  // itself answers RESOURCE_EXHAUSTED.
  const uint64_t max_receive = std::min<uint64_t>(
      uint64_t{options_.stream.max_batch_bytes} * 4 + (1 << 20), INT_MAX);
  probe_builder.SetMaxReceiveMessageSize(static_cast<int>(max_receive));
  probe_builder.RegisterService(probe_service_.get());
  // Each probe stream holds a sync-server thread for its lifetime. With
  // gRPC's defaults (1 poller, 10 s completion-queue timeout) a stream that
  // arrives while every poller is busy can wait up to 10 s under load; more
  // pollers and a short timeout keep new streams prompt.
  probe_builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  probe_builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 4);
  probe_builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 200);
  // Bounds the sync server's threads: the streams served, the pollers, and
  // as many again for streams being refused by ProbeServiceImpl (each holds
  // a thread for a moment). A burst beyond that gets gRPC's own
  // RESOURCE_EXHAUSTED "Server Threadpool Exhausted".
  grpc::ResourceQuota probe_quota("probe-streams");
  probe_quota.SetMaxThreads(2 * std::max(1, options_.max_probe_streams) + 32);
  probe_builder.SetResourceQuota(probe_quota);
  probe_server_ = probe_builder.BuildAndStart();
  if (probe_server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for probes on unix:", options_.probe_socket,
                     options_.probe_tcp_address.empty() ? "" : " / ",
                     options_.probe_tcp_address));
  }
  if (!options_.probe_socket.empty()) {
    // Probes may run as another user than the collector.
    ::chmod(options_.probe_socket.c_str(), 0666);
  }

  return absl::OkStatus();
}

// TraceService, grpc.health.v1 and reflection on --grpc_address.
absl::Status CollectorServer::StartUserGrpc() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  TraceServiceImpl::Options to;
  to.collector_version = kCollectorVersion;
  to.injection = options_.injection;
  to.flight = flight_.get();
  trace_service_ = std::make_unique<TraceServiceImpl>(
      to, store_.get(), manager_.get(), probe_service_.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_address,
                           grpc::InsecureServerCredentials(), &grpc_port_);
  builder.RegisterService(trace_service_.get());
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 200);
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on --grpc_address ", options_.grpc_address));
  }
  if (auto* health = grpc_server_->GetHealthCheckService()) {
    health->SetServingStatus(kHealthService, true);
  }

  return absl::OkStatus();
}

// The HTTP index, downloads, /healthz and /metrics.
absl::Status CollectorServer::StartHttp() {
  http::HttpServer::Options ho;
  absl::Status s =
      ParseHostPort(options_.http_address, &ho.bind_address, &ho.port);
  if (!s.ok()) return s;
  ho.threads = options_.http_threads;
  ho.server_name = absl::StrCat("vllm-profiler-collector/", kCollectorVersion);
  frontend_ = std::make_unique<HttpFrontend>(
      store_.get(), manager_.get(), probe_service_.get(), kCollectorVersion);
  FlightRecorder* flight = flight_.get();
  frontend_->set_extra_metrics(
      [flight](std::string* out) { flight->health().AppendMetrics(out); });
  HttpFrontend* frontend = frontend_.get();
  absl::StatusOr<std::unique_ptr<http::HttpServer>> http =
      http::HttpServer::Start(ho, [frontend](const http::Request& r) {
        return frontend->Handle(r);
      });
  if (!http.ok()) return http.status();
  http_ = std::move(*http);

  return absl::OkStatus();
}

void CollectorServer::LogListening() const {
  std::string grpc_host;
  uint16_t unused;
  std::string grpc_addr = options_.grpc_address;
  if (ParseHostPort(options_.grpc_address, &grpc_host, &unused).ok()) {
    grpc_addr = absl::StrCat(grpc_host, ":", grpc_port_);
  }
  std::string probes = options_.probe_socket.empty()
                           ? std::string()
                           : absl::StrCat("unix:", options_.probe_socket);
  if (!options_.probe_tcp_address.empty()) {
    absl::StrAppend(&probes, probes.empty() ? "" : ",",
                    options_.probe_tcp_address);
  }
  VP_LOG(INFO) << "collector: listening grpc=" << grpc_addr
               << " http=" << http_->address() << " probes=" << probes;
}

void CollectorServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // 1. End probe streams now; their open captures become incomplete.
  if (probe_service_ != nullptr) probe_service_->BeginShutdown();
  if (probe_server_ != nullptr) {
    probe_server_->Shutdown(std::chrono::system_clock::now());
  }
  // 2. Finalize whatever is still open.
  if (manager_ != nullptr) manager_->Shutdown("collector shutting down");
  // 3. Let downloads in flight finish briefly, then stop.
  if (grpc_server_ != nullptr) {
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           std::chrono::seconds(2));
  }
  if (http_ != nullptr) http_->Shutdown();
  if (probe_server_ != nullptr) probe_server_->Wait();
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

}  // namespace vllm_profiler::collector
