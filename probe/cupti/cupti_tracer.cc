#include "probe/cupti/cupti_tracer.h"

#include <utility>

namespace vllm_profiler::probe {
namespace {

// Placeholder until the CUPTI implementation lands.
class UnavailableTracer final : public GpuTracer {
 public:
  absl::Status Start(GpuEventSink*) override {
    return absl::UnavailableError("CUPTI tracer not built yet");
  }
  void Stop() override {}
  void PushExternalCorrelation(uint64_t) override {}
  void PopExternalCorrelation() override {}
  std::string Describe() const override { return "CUPTI: not built yet"; }
};

}  // namespace

std::unique_ptr<GpuTracer> NewCuptiTracer() {
  return NewCuptiTracer(CuptiTracerOptions());
}

std::unique_ptr<GpuTracer> NewCuptiTracer(CuptiTracerOptions) {
  return std::make_unique<UnavailableTracer>();
}

}  // namespace vllm_profiler::probe
