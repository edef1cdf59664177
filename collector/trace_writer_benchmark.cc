// Throughput of TraceWriter on kernel-like events (the hot path of the
// collector), into a sink that discards bytes. Reports bytes/s of JSON.
//   bazel run -c opt //collector:trace_writer_benchmark
#include <cstring>
#include <string>

#include "benchmark/benchmark.h"
#include "collector/trace_time_shift.h"
#include "collector/trace_writer.h"

namespace vllm_profiler::collector {
namespace {

class NullFile : public WritableFile {
 public:
  absl::Status Append(absl::string_view data) override {
    benchmark::DoNotOptimize(data.data());
    return absl::OkStatus();
  }
  absl::Status Close() override { return absl::OkStatus(); }
};

void BM_KernelEvents(benchmark::State& state) {
  TraceWriter w(std::make_unique<NullFile>());
  const std::string name =
      "void at::native::vectorized_elementwise_kernel<4, "
      "at::native::FillFunctor<float>, at::detail::Array<char*, 1> >(int, "
      "at::native::FillFunctor<float>, at::detail::Array<char*, 1>)";
  int64_t ts = 1000000000;
  uint64_t corr = 1;
  for (auto _ : state) {
    w.BeginEvent();
    w.Key("ph");
    w.String("X");
    w.Key("cat");
    w.String("kernel");
    w.Key("name");
    w.String(name);
    w.Key("pid");
    w.Int(12345);
    w.Key("tid");
    w.Int(1000000007);
    w.Key("ts");
    w.Micros(ts);
    w.Key("dur");
    w.Micros(2345);
    w.Key("args");
    w.BeginObject();
    w.Key("device");
    w.Int(0);
    w.Key("stream");
    w.Int(7);
    w.Key("correlation");
    w.Uint(corr++);
    w.Key("grid");
    w.BeginArray();
    w.Int(128);
    w.Int(1);
    w.Int(1);
    w.EndArray();
    w.Key("block");
    w.BeginArray();
    w.Int(256);
    w.Int(1);
    w.Int(1);
    w.EndArray();
    w.EndObject();
    w.EndEvent();
    ts += 3456;
  }
  state.SetBytesProcessed(static_cast<int64_t>(w.bytes_written()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KernelEvents);

// Rewriting a finished trace when its time base moves (trace_time_shift.h):
// bytes/s over kernel-like events.
void BM_ShiftTimes(benchmark::State& state) {
  std::string trace = "{\"traceEvents\":[";
  for (int i = 0; i < 20000; ++i) {
    trace += R"({"ph":"X","cat":"kernel","name":"void at::native::)"
             R"j(vectorized_elementwise_kernel<4>(int)","pid":12345,)j"
             R"("tid":1000000007,"ts":)" +
             std::to_string(1000 + i) +
             R"(.345,"dur":2.345,"args":{"device":0,"stream":7,)"
             R"("correlation":12,"grid":[128,1,1],"block":[256,1,1]}},)";
  }
  trace.back() = ']';
  trace += "}";
  std::string out;
  for (auto _ : state) {
    out.clear();
    TraceTimeShifter shifter(5000000);
    benchmark::DoNotOptimize(shifter.Feed(trace, &out).ok());
    benchmark::DoNotOptimize(shifter.Finish(&out).ok());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(trace.size()));
}
BENCHMARK(BM_ShiftTimes);

void BM_EscapeMixedString(benchmark::State& state) {
  TraceWriter w(std::make_unique<NullFile>());
  std::string s;
  for (int i = 0; i < 64; ++i) s += "aten::linear \"x\"\t\xc3\xa9";
  for (auto _ : state) w.String(s);
  state.SetBytesProcessed(static_cast<int64_t>(w.bytes_written()));
}
BENCHMARK(BM_EscapeMixedString);

// Baseline for the ratio: memcpy of the same amount of bytes in 1 MiB
// blocks (the writer's buffer size) into a reused buffer.
void BM_MemcpyBaseline(benchmark::State& state) {
  std::string src(1 << 20, 'x'), dst(1 << 20, 'y');
  for (auto _ : state) {
    std::memcpy(&dst[0], src.data(), src.size());
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(src.size()));
}
BENCHMARK(BM_MemcpyBaseline);

}  // namespace
}  // namespace vllm_profiler::collector
