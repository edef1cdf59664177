#include "collector/healthcheck.h"

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/filesystem.h"
#include "nlohmann/json.hpp"
#include "proto/health.grpc.pb.h"

namespace vllm_profiler::collector {
namespace {

// The port file is a few dozen bytes; anything larger is not ours.
constexpr size_t kMaxPortFileBytes = 4096;

absl::StatusOr<int> GrpcPort(const std::string& port_file) {
  absl::StatusOr<std::string> text =
      Filesystem::Default()->ReadSmallFile(port_file, kMaxPortFileBytes);
  if (!text.ok()) {
    return absl::UnavailableError(absl::StrCat(
        text.status().message(), " (collector not listening yet)"));
  }
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  const auto it = j.is_object() ? j.find("grpc_port") : j.end();
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() <= 0 ||
      it->get<int64_t>() > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(port_file, ": no grpc_port in ", *text));
  }
  return static_cast<int>(it->get<int64_t>());
}

}  // namespace

absl::Status CheckCollectorHealth(const std::string& port_file,
                                  absl::Duration timeout) {
  absl::StatusOr<int> port = GrpcPort(port_file);
  if (!port.ok()) return port.status();
  const std::string target = absl::StrCat("127.0.0.1:", *port);
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(kHealthService);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status s = stub->Check(&ctx, request, &response);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("Check ", target, ": ",
                                               s.error_message(), " (code ",
                                               s.error_code(), ")"));
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::FailedPreconditionError(
        absl::StrCat("Check ", target, ": ",
                     grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                         response.status())));
  }
  return absl::OkStatus();
}

}  // namespace vllm_profiler::collector
