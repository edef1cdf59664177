// The whole collector, wired: trace store, capture manager, the probe gRPC
// server (Unix socket, optional TCP), the user gRPC server (TraceService,
// grpc.health.v1, server reflection) and the HTTP front end.
//
// main.cc maps flags to Options and calls Start(); the service tests run it
// in-process on port 0 and a temp socket.
//
// Failure: listener errors fail Start() with the address in the message. A
// trace directory that cannot be created or read is logged and shown in
// GetStatus; the collector still starts (and serves whatever it can).
// Thread safety: Start/Shutdown from one thread; accessors from any.
#ifndef VLLM_PROFILER_COLLECTOR_COLLECTOR_SERVER_H_
#define VLLM_PROFILER_COLLECTOR_COLLECTOR_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/capture_manager.h"
#include "collector/http_frontend.h"
#include "collector/probe_service.h"
#include "collector/trace_service.h"
#include "collector/trace_store.h"
#include "common/filesystem.h"
#include "common/http/http_server.h"

namespace vllm_profiler::collector {

inline constexpr char kCollectorVersion[] = "0.1.0";

class CollectorServer {
 public:
  struct Options {
    // Unix socket for ProbeService (parent directories are created, a stale
    // socket file is replaced).
    std::string probe_socket = "/home/vllm/profiler/collector.sock";
    // Optional host:port for ProbeService over TCP; empty = off.
    std::string probe_tcp_address;
    // TraceService + health + reflection; port 0 picks one.
    std::string grpc_address = "127.0.0.1:9470";
    // HTTP front end; port 0 picks one.
    std::string http_address = "127.0.0.1:9471";
    TraceStore::Options store;
    absl::Duration window_linger = absl::Seconds(2);
    // CaptureManager::Options::probe_eviction_min_age.
    absl::Duration probe_eviction_min_age = absl::Minutes(10);
    ProbeStream::Options stream;
    // Probe streams served at once, and the time a stream has for its Hello
    // (ProbeServiceImpl::Options).
    int max_probe_streams = 256;
    absl::Duration hello_timeout = absl::Seconds(5);
    // When set, {"grpc_port":N,"http_port":M} is written there atomically
    // once every listener is up.
    std::string port_file;
    // Reported by GetStatus (the webhook's status annotation).
    std::string injection;
    int http_threads = 4;
    // Filesystem for the trace directory (tests inject faults); null = the
    // real one.
    Filesystem* fs = nullptr;
    // The flight recorder's triggers (collector flags --trigger_*).
    FlightRecorder::Options flight;
  };

  static absl::StatusOr<std::unique_ptr<CollectorServer>> Start(
      Options options);
  ~CollectorServer();
  CollectorServer(const CollectorServer&) = delete;
  CollectorServer& operator=(const CollectorServer&) = delete;

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_->port(); }
  TraceStore* store() { return store_.get(); }
  CaptureManager* manager() { return manager_.get(); }
  ProbeServiceImpl* probes() { return probe_service_.get(); }
  FlightRecorder* flight() { return flight_.get(); }

  // Ends probe streams (their open captures are finalized as incomplete),
  // then stops the user-facing servers. Idempotent.
  void Shutdown();

 private:
  explicit CollectorServer(Options options);
  absl::Status StartImpl();
  absl::Status StartProbeServer();
  absl::Status StartUserGrpc();
  absl::Status StartHttp();
  void LogListening() const;

  const Options options_;
  std::unique_ptr<TraceStore> store_;
  std::unique_ptr<CaptureManager> manager_;
  std::unique_ptr<FlightRecorder> flight_;
  std::unique_ptr<FlightRecorder::Probes> flight_probes_;
  std::unique_ptr<ProbeServiceImpl> probe_service_;
  std::unique_ptr<TraceServiceImpl> trace_service_;
  std::unique_ptr<HttpFrontend> frontend_;
  std::unique_ptr<grpc::Server> probe_server_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<http::HttpServer> http_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

// Splits "host:port" (IPv6 as "[::1]:80"); port must be 0..65535.
absl::Status ParseHostPort(const std::string& address, std::string* host,
                           uint16_t* port);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_COLLECTOR_SERVER_H_
