// libFuzzer target over the whole AdmissionReview handler: any bytes in,
// never a crash, and every answer is either a 400 text message or a valid
// AdmissionReview whose patch (if any) is a JSON array of add operations.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "nlohmann/json.hpp"
#include "webhook/admission.h"

namespace {

using vllm_profiler::webhook::AdmissionResult;
using vllm_profiler::webhook::Admitter;
using vllm_profiler::webhook::InjectionConfig;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Admitter* admitter = new Admitter(InjectionConfig{});
  AdmissionResult r =
      admitter->Review(std::string(reinterpret_cast<const char*>(data), size));
  if (r.http_status == 400) {
    Check(!r.body.empty() && r.body.back() == '\n');
    return 0;
  }
  Check(r.http_status == 200);
  nlohmann::json review = nlohmann::json::parse(r.body, nullptr, false);
  Check(review.is_object());
  const nlohmann::json& resp = review["response"];
  Check(resp["allowed"] == true);
  if (resp.contains("patch")) {
    std::string raw;
    Check(absl::Base64Unescape(resp["patch"].get<std::string>(), &raw));
    nlohmann::json ops = nlohmann::json::parse(raw, nullptr, false);
    Check(ops.is_array() && !ops.empty());
    for (const auto& op : ops) Check(op["op"] == "add");
  }
  return 0;
}
