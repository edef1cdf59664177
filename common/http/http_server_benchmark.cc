// HTTP server hot paths over loopback: small keep-alive requests (the
// webhook's and /metrics' shape) and a streamed file download, plain and
// gzip, next to reading the same file with read(2) in the same run.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "benchmark/benchmark.h"
#include "common/http/http_server.h"
#include "common/http/test_util.h"

namespace vllm_profiler::http {
namespace {

std::string TmpDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

std::string BigFile() {
  static const std::string path = [] {
    std::string p = TmpDir() + "/http_bench.json";
    std::string line =
        "{\"ph\":\"X\",\"cat\":\"cpu_op\",\"name\":\"aten::mm\",\"pid\":1,"
        "\"tid\":2,\"ts\":123.456,\"dur\":7.890},\n";
    std::string data;
    while (data.size() < (256u << 20)) data += line;
    testutil::WriteFileOrDie(p, data);
    return p;
  }();
  return path;
}

std::unique_ptr<HttpServer> StartServer(size_t chunk = 256 * 1024) {
  HttpServer::Options o;
  o.stream_chunk_bytes = chunk;
  auto s = HttpServer::Start(o, [](const Request& req) {
    if (req.path == "/file" || req.path == "/file.gz") {
      Response r = Response::File(BigFile(), "application/json");
      r.gzip = req.path == "/file.gz";
      return r;
    }
    return Response::Json(200, "{\"ok\":true}");
  });
  if (!s.ok()) std::abort();
  return *std::move(s);
}

void BM_SmallKeepAliveRequests(benchmark::State& state) {
  auto server = StartServer();
  auto client = testutil::TestClient::Connect(server->port(), false);
  for (auto _ : state) {
    auto r = (*client)->Get("/metrics");
    if (!r.ok() || r->status != 200) state.SkipWithError("request failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SmallKeepAliveRequests)->UseRealTime();

void BM_Download(benchmark::State& state) {
  const bool gzip = state.range(0) != 0;
  auto server = StartServer(static_cast<size_t>(state.range(1)));
  BigFile();
  auto client = testutil::TestClient::Connect(server->port(), false);
  int64_t bytes = 0;
  for (auto _ : state) {
    auto r = (*client)->Get(gzip ? "/file.gz" : "/file");
    if (!r.ok() || r->status != 200) state.SkipWithError("download failed");
    bytes += 256 << 20;  // Uncompressed bytes served.
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_Download)
    ->Args({0, 256 << 10})
    ->Args({0, 1 << 20})
    ->Args({1, 256 << 10})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Baseline: read(2) of the same (cached) file into a buffer.
void BM_ReadFileBaseline(benchmark::State& state) {
  const std::string path = BigFile();
  std::string buf(256 * 1024, '\0');
  int64_t bytes = 0;
  for (auto _ : state) {
    int fd = ::open(path.c_str(), O_RDONLY);
    ssize_t n;
    while ((n = ::read(fd, &buf[0], buf.size())) > 0) bytes += n;
    ::close(fd);
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_ReadFileBaseline)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace vllm_profiler::http
