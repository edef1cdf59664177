#include "webhook/handler.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler::webhook {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kReview[] =
    R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",)"
    R"("request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},)"
    R"("operation":"CREATE","namespace":"downstream-llm-d","object":)"
    R"({"metadata":{"labels":{"llm-d.ai/inferenceServing":"true"}},)"
    R"("spec":{"containers":[{"name":"vllm"}]}}}})";

class HandlerTest : public ::testing::Test {
 protected:
  http::Response Send(std::string method, std::string path,
                      std::string body = "",
                      const char* content_type = "application/json") {
    http::Request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.target = r.path;
    r.body = std::move(body);
    if (content_type != nullptr) r.headers["content-type"] = content_type;
    return handler_.Handle(r);
  }

  Admitter admitter_{InjectionConfig{}};
  WebhookMetrics metrics_;
  WebhookHandler handler_{&admitter_, &metrics_, {.max_body_bytes = 2048}};
};

TEST_F(HandlerTest, MutateInjects) {
  http::Response r =
      Send("POST", "/mutate", kReview, "application/json; charset=utf-8");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_THAT(r.body, HasSubstr("\"patchType\":\"JSONPatch\""));
  EXPECT_THAT(metrics_.Render(),
              HasSubstr("vllm_profiler_webhook_injected_total 1\n"));
}

TEST_F(HandlerTest, HttpLevelRejectionsHaveExactStatusAndMessage) {
  struct Case {
    http::Response got;
    int status;
    const char* body;
  } cases[] = {
      {Send("GET", "/mutate"), 405,
       "method GET not allowed on /mutate; use POST\n"},
      {Send("POST", "/mutate", kReview, "text/plain"), 415,
       "unsupported Content-Type \"text/plain\": expected application/json\n"},
      {Send("POST", "/mutate", kReview, nullptr), 415,
       "missing Content-Type: expected application/json\n"},
      {Send("POST", "/mutate", std::string(2049, ' ')), 413,
       "request body of 2049 bytes exceeds the limit of 2048 bytes\n"},
      {Send("POST", "/mutate", "nope"), 400,
       "invalid AdmissionReview: body is not valid JSON\n"},
      {Send("GET", "/nope"), 404,
       "not found: /nope (the webhook serves POST /mutate)\n"},
      {Send("POST", "/healthz"), 405,
       "method POST not allowed on /healthz; use GET\n"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.got.status, c.status) << c.body;
    EXPECT_EQ(c.got.body, c.body);
  }
  EXPECT_THAT(cases[0].got.headers, Contains(Pair("Allow", "POST")));
  const std::string m = metrics_.Render();
  EXPECT_THAT(m, HasSubstr("errors_total{reason=\"method_not_allowed\"} 1\n"));
  EXPECT_THAT(m,
              HasSubstr("errors_total{reason=\"unsupported_media_type\"} 2\n"));
  EXPECT_THAT(m, HasSubstr("errors_total{reason=\"body_too_large\"} 1\n"));
  EXPECT_THAT(m, HasSubstr("errors_total{reason=\"invalid_json\"} 1\n"));
}

TEST_F(HandlerTest, HealthReadyMetrics) {
  EXPECT_EQ(Send("GET", "/healthz").body, "ok\n");
  EXPECT_EQ(Send("GET", "/readyz").body, "ok\n");
  http::Response m = Send("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(m.body, HasSubstr("vllm_profiler_webhook_requests_total 0\n"));
}

}  // namespace
}  // namespace vllm_profiler::webhook
