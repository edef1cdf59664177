#include "collector/vpctl/kubectl.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace vllm_profiler::collector::vpctl {
namespace {

TEST(KubectlTest, ForwardedPortIsReadFromKubectlsLine) {
  EXPECT_EQ(ForwardedPort(""), 0);
  EXPECT_EQ(ForwardedPort("Forwarding from 127.0.0.1:41234 -> 9470\n"
                          "Forwarding from [::1]:41234 -> 9470\n"),
            41234);
  EXPECT_EQ(ForwardedPort("Forwarding from [::1]:5 -> 9470\n"), 0);
  EXPECT_EQ(ForwardedPort("Forwarding from 127.0.0.1:99999 -> 1\n"), 0);
  EXPECT_EQ(ForwardedPort("Forwarding from 127.0.0.1:"), 0);
}

// Against the stand-in kubectl (tests/fleet/kubectl): the exact argument
// shapes vpctl uses pass its strict checks.
class StandInTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::string(::getenv("TEST_TMPDIR"));
    ::setenv("FAKE_KUBECTL_DIR", dir_.c_str(), 1);
    options_.binary = std::string(::getenv("TEST_SRCDIR")) +
                      "/vllm_profiler/tests/fleet/kubectl";
    options_.ns = "llm";
    options_.context = "ctx";
    options_.work_dir = dir_;
    Write("pods.json",
          R"({"kind":"List","items":[{"metadata":{"name":"p","namespace":)"
          R"("llm","labels":{"app":"v"}}}]})");
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::string dir_;
  KubectlOptions options_;
};

TEST_F(StandInTest, GetPodsAndErrors) {
  absl::StatusOr<std::string> out =
      RunKubectl(options_, {"get", "pods", "-o", "json", "-l", "app=v"},
                 absl::Seconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE(out->find("\"name\": \"p\""), std::string::npos) << *out;
  out = RunKubectl(options_, {"get", "pods", "-o", "yaml"}, absl::Seconds(30));
  EXPECT_EQ(out.status().message(),
            "kubectl get pods: fake kubectl: unexpected get: --context ctx -n "
            "llm get pods -o yaml");
  KubectlOptions missing = options_;
  missing.binary = "/nonexistent/kubectl";
  out = RunKubectl(missing, {"get", "pods"}, absl::Seconds(30));
  EXPECT_EQ(out.status().message(),
            "cannot run /nonexistent/kubectl: No such file or directory");
}

TEST_F(StandInTest, PortForwardStartsRestartsOnceThenGivesUp) {
  // A local listener plays the collector.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::listen(fd, 4);
  Write("ports.json", "{\"p\": " + std::to_string(ntohs(addr.sin_port)) + "}");
  Write("faults.json", R"({"p": {"die_after_s": 0.3, "restart": "ok"}})");
  PortForward pf(options_, PortForward::Options{"p", 9470});
  ASSERT_TRUE(pf.Start().ok());
  const std::string first = pf.addr();
  EXPECT_EQ(first.rfind("127.0.0.1:", 0), 0u);
  EXPECT_TRUE(pf.DiedWithin(absl::Seconds(20)));
  ASSERT_TRUE(pf.EnsureAlive().ok());
  EXPECT_TRUE(pf.restarted());
  EXPECT_TRUE(pf.EnsureAlive().ok());  // The restarted one keeps running.
  pf.Stop();
  absl::Status s = pf.EnsureAlive();
  EXPECT_EQ(s.message(),
            "kubectl port-forward pod/p died again (exit status 143); not "
            "restarted a second time");
  PortForward gone(options_, PortForward::Options{"nope", 9470});
  EXPECT_EQ(gone.Start().message(),
            "kubectl port-forward pod/nope: error: error upgrading "
            "connection: pods \"nope\" not found");
  ::close(fd);
}

}  // namespace
}  // namespace vllm_profiler::collector::vpctl
