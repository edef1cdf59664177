#include "webhook/handler.h"

#include <chrono>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace vllm_profiler::webhook {
namespace {

http::Response Error(int status, std::string message) {
  return http::Response::Text(status, message + "\n");
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// The media type of a Content-Type value, lower-cased, without parameters.
std::string MediaType(const std::string& content_type) {
  std::string type = content_type.substr(0, content_type.find(';'));
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(type));
}

}  // namespace

WebhookHandler::WebhookHandler(const Admitter* admitter,
                               WebhookMetrics* metrics, Options options)
    : admitter_(admitter), metrics_(metrics), options_(options) {}

http::Response WebhookHandler::Handle(const http::Request& request) const {
  if (request.path == "/mutate") return Mutate(request);
  if (request.path == "/healthz" || request.path == "/readyz" ||
      request.path == "/metrics") {
    if (request.method != "GET") {
      http::Response r =
          Error(405, absl::StrCat("method ", request.method, " not allowed on ",
                                  request.path, "; use GET"));
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    if (request.path == "/metrics") {
      http::Response r = http::Response::Text(200, metrics_->Render());
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return r;
    }
    return http::Response::Text(200, "ok\n");
  }
  return Error(404, absl::StrCat("not found: ", request.path,
                                 " (the webhook serves POST /mutate)"));
}

http::Response WebhookHandler::Mutate(const http::Request& request) const {
  const auto start = std::chrono::steady_clock::now();
  auto reject = [&](int status, const char* reason, std::string message) {
    metrics_->RecordHttpError(reason, SecondsSince(start));
    VP_LOG(WARNING) << "rejected " << request.method << " " << request.path
                    << " from " << request.remote << ": " << status << " "
                    << message;
    return Error(status, std::move(message));
  };
  if (request.method != "POST") {
    http::Response r =
        reject(405, "method_not_allowed",
               absl::StrCat("method ", request.method,
                            " not allowed on /mutate; use POST"));
    r.headers.emplace_back("Allow", "POST");
    return r;
  }
  const std::string* content_type = request.Header("content-type");
  if (content_type == nullptr) {
    return reject(415, "unsupported_media_type",
                  "missing Content-Type: expected application/json");
  }
  if (MediaType(*content_type) != "application/json") {
    return reject(415, "unsupported_media_type",
                  absl::StrCat("unsupported Content-Type \"", *content_type,
                               "\": expected application/json"));
  }
  if (static_cast<int64_t>(request.body.size()) > options_.max_body_bytes) {
    return reject(413, "body_too_large",
                  absl::StrCat("request body of ", request.body.size(),
                               " bytes exceeds the limit of ",
                               options_.max_body_bytes, " bytes"));
  }
  AdmissionResult result = admitter_->Review(request.body);
  const double seconds = SecondsSince(start);
  metrics_->RecordReview(result.outcome, result.reason, seconds);
  switch (result.outcome) {
    case Outcome::kInjected:
      VP_LOG(INFO) << "injected " << result.pod << " uid=" << result.uid
                   << " warnings=" << result.warnings.size();
      break;
    case Outcome::kSkipped:
      // INFO: every skip is explained in the log, so an operator can see why
      // a pod was left alone; the objectSelector keeps this to labelled pods.
      VP_LOG(INFO) << "skipped " << result.pod << " uid=" << result.uid
                   << " reason=" << result.reason;
      break;
    case Outcome::kFailOpen:
      VP_LOG(WARNING) << "not injected " << result.pod << " uid=" << result.uid
                      << " reason=" << result.reason
                      << (result.warnings.empty() ? ""
                                                  : ": " + result.warnings[0]);
      break;
    case Outcome::kBadRequest:
      VP_LOG(WARNING) << "bad request from " << request.remote << ": "
                      << absl::StripTrailingAsciiWhitespace(result.body);
      break;
  }
  for (const std::string& w : result.warnings) {
    VP_LOG(DEBUG) << "warning for " << result.pod << ": " << w;
  }
  http::Response r;
  r.status = result.http_status;
  r.content_type = result.content_type;
  r.body = std::move(result.body);
  return r;
}

}  // namespace vllm_profiler::webhook
