#include "collector/healthcheck.h"

#include <stdlib.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "collector/collector_server.h"
#include "gtest/gtest.h"

namespace vllm_profiler::collector {
namespace {

std::string TestDir(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(HealthcheckTest, ServingCollectorIsHealthy) {
  CollectorServer::Options o;
  // Unix socket paths are limited to 107 bytes; TEST_TMPDIR can be long.
  char dir[] = "/tmp/vphealth-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  o.probe_socket = std::string(dir) + "/collector.sock";
  o.grpc_address = "127.0.0.1:0";
  o.http_address = "127.0.0.1:0";
  o.store.dir = TestDir("traces");
  o.port_file = TestDir("ports.json");
  absl::StatusOr<std::unique_ptr<CollectorServer>> server =
      CollectorServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(CheckCollectorHealth(o.port_file, absl::Seconds(10)).ok());

  // Stopped: the port file still names the port, nobody answers.
  const int port = (*server)->grpc_port();
  (*server)->Shutdown();
  server->reset();
  absl::Status s = CheckCollectorHealth(o.port_file, absl::Seconds(2));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(
      absl::StartsWith(s.message(), "Check 127.0.0.1:" + std::to_string(port)))
      << s;
}

TEST(HealthcheckTest, NoPortFileYetSaysTheCollectorIsNotListening) {
  absl::Status s = CheckCollectorHealth(TestDir("none.json"), absl::Seconds(2));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "open " + TestDir("none.json") +
                             ": No such file or directory (collector not "
                             "listening yet)");
}

TEST(HealthcheckTest, PortFileWithoutAGrpcPortIsRefused) {
  for (const std::string text :
       {"{\"http_port\":1}", "not json", "{\"grpc_port\":0}",
        "{\"grpc_port\":\"9470\"}", "{\"grpc_port\":70000}", "[]"}) {
    Write(TestDir("bad.json"), text);
    absl::Status s =
        CheckCollectorHealth(TestDir("bad.json"), absl::Seconds(2));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(s.message(), TestDir("bad.json") + ": no grpc_port in " + text);
  }
}

}  // namespace
}  // namespace vllm_profiler::collector
