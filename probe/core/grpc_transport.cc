#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>

#include <mutex>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "probe/core/log.h"
#include "probe/core/transport.h"
#include "proto/profiler.grpc.pb.h"

namespace vllm_profiler::probe {
namespace {

class GrpcStream final : public ProbeStream {
 public:
  GrpcStream(std::shared_ptr<grpc::Channel> channel,
             std::unique_ptr<v1::ProbeService::Stub> stub)
      : channel_(std::move(channel)), stub_(std::move(stub)) {
    stream_ = stub_->Connect(&context_);
  }
  bool Write(const v1::ProbeMessage& message) override {
    return stream_->Write(message);
  }
  bool Read(v1::CollectorCommand* command) override {
    return stream_->Read(command);
  }
  void WritesDone() override { stream_->WritesDone(); }
  void Cancel() override { context_.TryCancel(); }
  void Finish() override { stream_->Finish(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ProbeService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ProbeMessage, v1::CollectorCommand>>
      stream_;
};

class GrpcTransport final : public ProbeTransport {
 public:
  explicit GrpcTransport(std::string target) : target_(std::move(target)) {}

  absl::StatusOr<std::unique_ptr<ProbeStream>> Connect(
      absl::Duration timeout) override {
    grpc::ChannelArguments args;
    // Our own backoff governs reconnects; keep gRPC's short so a collector
    // that comes back is seen at our next attempt.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 64 << 20);
    auto channel = grpc::CreateCustomChannel(
        target_, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
      return absl::UnavailableError(
          absl::StrCat("collector not reachable at ", target_));
    }
    auto stub = v1::ProbeService::NewStub(channel);
    return std::unique_ptr<ProbeStream>(
        new GrpcStream(std::move(channel), std::move(stub)));
  }
  std::string target() const override { return target_; }

 private:
  const std::string target_;
};

// gRPC's own log lines go through ours: at debug level, each distinct line
// once. Otherwise they reach the host's stderr on every connection retry
// (a socket path over 107 bytes, an unparsable address from c-ares), while
// the probe already says what matters in one line ("collector not
// reachable at ..."). The probe's gRPC is linked into it privately, so the
// host's own gRPC (if any) keeps its logging; no environment is touched.
void GrpcLogToProbe(gpr_log_func_args* args) {
  static std::mutex mu;
  static std::set<std::string>* seen = new std::set<std::string>();
  const std::string key =
      absl::StrCat(args->file == nullptr ? "" : args->file, ":", args->line);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (seen->size() >= 256 || !seen->insert(key).second) return;
  }
  ProbeLog(
      ProbeLogLevel::kDebug,
      absl::StrCat("grpc: ", args->message == nullptr ? "" : args->message));
}

}  // namespace

std::unique_ptr<ProbeTransport> NewGrpcTransport(std::string target) {
  static std::once_flag routed;
  std::call_once(routed, [] { gpr_set_log_function(&GrpcLogToProbe); });
  return std::make_unique<GrpcTransport>(std::move(target));
}

}  // namespace vllm_profiler::probe
