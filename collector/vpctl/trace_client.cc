#include "collector/vpctl/trace_client.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vllm_profiler::collector::vpctl {
namespace {

void SetDeadline(grpc::ClientContext* context, absl::Duration d) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

absl::Status WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

TraceClient::TraceClient(Options options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  stub_ = v1::TraceService::NewStub(grpc::CreateCustomChannel(
      options_.addr, grpc::InsecureChannelCredentials(), args));
}

absl::Status TraceClient::FromGrpc(const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat("cannot reach collector at ",
                                               options_.addr, ": ",
                                               status.error_message()));
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

template <typename Request, typename Response>
absl::StatusOr<Response> TraceClient::Unary(
    grpc::Status (v1::TraceService::Stub::*method)(grpc::ClientContext*,
                                                   const Request&, Response*),
    const Request& request, absl::Duration deadline) {
  grpc::ClientContext context;
  SetDeadline(&context, deadline);
  Response response;
  grpc::Status s = (stub_.get()->*method)(&context, request, &response);
  if (!s.ok()) return FromGrpc(s);
  return response;
}

absl::StatusOr<v1::ListTracesResponse> TraceClient::List() {
  return Unary(&v1::TraceService::Stub::ListTraces, v1::ListTracesRequest(),
               options_.timeout);
}

absl::StatusOr<v1::GetStatusResponse> TraceClient::Status() {
  return Unary(&v1::TraceService::Stub::GetStatus, v1::GetStatusRequest(),
               options_.timeout);
}

absl::StatusOr<v1::StartCaptureResponse> TraceClient::StartCapture(
    const v1::StartCaptureRequest& request, absl::Duration deadline) {
  return Unary(&v1::TraceService::Stub::StartCapture, request, deadline);
}

absl::StatusOr<v1::TriggerResponse> TraceClient::Trigger(
    const v1::TriggerRequest& request, absl::Duration deadline) {
  return Unary(&v1::TraceService::Stub::Trigger, request, deadline);
}

absl::Status TraceClient::Delete(const std::string& id) {
  v1::DeleteTraceRequest request;
  request.set_id(id);
  return Unary(&v1::TraceService::Stub::DeleteTrace, request, options_.timeout)
      .status();
}

absl::StatusOr<uint64_t> TraceClient::Fetch(const std::string& id,
                                            const std::string& path) {
  const bool to_stdout = path == "-";
  const std::string tmp =
      to_stdout ? "" : absl::StrCat(path, ".vpctl-", ::getpid(), ".partial");
  int fd = STDOUT_FILENO;
  if (!to_stdout) {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
    }
  }
  auto fail = [&](absl::Status s) {
    if (!to_stdout) {
      ::close(fd);
      ::unlink(tmp.c_str());
    }
    return s;
  };

  grpc::ClientContext context;
  v1::GetTraceRequest request;
  request.set_id(id);
  request.set_encoding(absl::EndsWith(path, ".gz")
                           ? v1::GetTraceRequest::ENCODING_GZIP
                           : v1::GetTraceRequest::ENCODING_PLAIN);
  std::unique_ptr<grpc::ClientReader<v1::TraceChunk>> reader =
      stub_->GetTrace(&context, request);
  v1::TraceChunk chunk;
  uint64_t written = 0;
  bool last = false;
  while (reader->Read(&chunk)) {
    if (chunk.offset() != written) {
      context.TryCancel();
      reader->Finish();
      return fail(absl::DataLossError(
          absl::StrCat("trace chunk at offset ", chunk.offset(), " but ",
                       written, " bytes received so far")));
    }
    if (absl::Status s = WriteAll(fd, chunk.data()); !s.ok()) {
      context.TryCancel();
      reader->Finish();
      return fail(absl::UnavailableError(
          absl::StrCat("cannot write ", path, ": ", s.message())));
    }
    written += chunk.data().size();
    last = chunk.last();
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return fail(FromGrpc(status));
  if (!last) {
    return fail(
        absl::DataLossError("the trace stream ended without its last chunk"));
  }
  if (to_stdout) return written;
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot rename to ", path, ": ", std::strerror(err)));
  }
  return written;
}

}  // namespace vllm_profiler::collector::vpctl
