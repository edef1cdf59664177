#include "common/http/tls_context.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/http_server.h"
#include "common/http/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler::http {
namespace {

using ::testing::HasSubstr;
using testutil::CertPair;
using testutil::ClientResponse;
using testutil::MakeSelfSignedCert;
using testutil::TestClient;
using testutil::WriteFileOrDie;

// Lays files out like a Kubernetes Secret volume: dir/tls.crt ->
// ..data/tls.crt, ..data -> ..<version>/; Rotate() swaps ..data atomically.
class SecretDir {
 public:
  explicit SecretDir(const std::string& name)
      : dir_(std::string(std::getenv("TEST_TMPDIR")) + "/" + name) {
    std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str());
    Rotate("", "");
    symlink("..data/tls.crt", cert().c_str());
    symlink("..data/tls.key", key().c_str());
  }
  std::string cert() const { return dir_ + "/tls.crt"; }
  std::string key() const { return dir_ + "/tls.key"; }

  void Rotate(const std::string& cert_pem, const std::string& key_pem) {
    const std::string version = absl::StrCat("..v", ++version_);
    const std::string vdir = dir_ + "/" + version;
    std::system(("mkdir -p " + vdir).c_str());
    WriteFileOrDie(vdir + "/tls.crt", cert_pem);
    WriteFileOrDie(vdir + "/tls.key", key_pem);
    const std::string tmp = dir_ + "/..data_tmp";
    unlink(tmp.c_str());
    ASSERT_EQ(symlink(version.c_str(), tmp.c_str()), 0);
    ASSERT_EQ(rename(tmp.c_str(), (dir_ + "/..data").c_str()), 0);
  }
  void Rotate(const CertPair& pair) { Rotate(pair.cert_pem, pair.key_pem); }

 private:
  std::string dir_;
  int version_ = 0;
};

bool WaitFor(const std::function<bool()>& cond) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

TEST(TlsContextTest, MissingFilesAreNotFound) {
  TlsContext::Options o;
  o.cert_file = "/nonexistent/tls.crt";
  o.key_file = "/nonexistent/tls.key";
  auto tls = TlsContext::Create(o);
  ASSERT_FALSE(tls.ok());
  EXPECT_EQ(tls.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tls.status().message(),
            "TLS certificate file /nonexistent/tls.crt: No such file or "
            "directory");
}

TEST(TlsContextTest, GarbageAndMismatchedPairsAreRejected) {
  SecretDir dir("bad");
  dir.Rotate("not a certificate", "not a key");
  TlsContext::Options o{dir.cert(), dir.key()};
  auto tls = TlsContext::Create(o);
  ASSERT_FALSE(tls.ok());
  EXPECT_EQ(tls.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tls.status().message()),
              HasSubstr("TLS certificate file " + dir.cert() +
                        " is not a valid PEM certificate chain"));

  CertPair a = MakeSelfSignedCert("a", 1);
  CertPair b = MakeSelfSignedCert("b", 2);
  dir.Rotate(a.cert_pem, b.key_pem);
  tls = TlsContext::Create(o);
  ASSERT_FALSE(tls.ok());
  EXPECT_THAT(std::string(tls.status().message()),
              HasSubstr("TLS key file " + dir.key() +
                        " does not match the certificate in " + dir.cert()));
}

class TlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<SecretDir>("secret");
    dir_->Rotate(MakeSelfSignedCert("collector.local", 1));
    TlsContext::Options o{dir_->cert(), dir_->key(), absl::Milliseconds(50)};
    auto tls = TlsContext::Create(o);
    ASSERT_TRUE(tls.ok()) << tls.status();
    tls_ = *std::move(tls);
    EXPECT_EQ(tls_->generation(), 1);
    HttpServer::Options so;
    so.tls = tls_.get();
    so.threads = 2;
    auto server = HttpServer::Start(so, [](const Request& req) {
      return Response::Text(200, "secure " + req.path);
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    server_.reset();  // Before the context it points to.
    tls_.reset();
  }

  std::unique_ptr<SecretDir> dir_;
  std::unique_ptr<TlsContext> tls_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(TlsServerTest, HandshakeAndRequests) {
  auto c = TestClient::Connect(server_->port(), /*tls=*/true);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->PeerSerial(), 1);
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<ClientResponse> r = (*c)->Get("/x");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, "secure /x");
  }
}

TEST_F(TlsServerTest, RotationServesNewCertToNewHandshakesOnly) {
  auto old_client = TestClient::Connect(server_->port(), true);
  ASSERT_TRUE(old_client.ok()) << old_client.status();
  ASSERT_EQ((*old_client)->PeerSerial(), 1);

  // The old connection keeps sending throughout the rotation.
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  std::thread keep_alive([&] {
    while (!stop) {
      absl::StatusOr<ClientResponse> r = (*old_client)->Get("/ka");
      if (!r.ok() || r->body != "secure /ka") ++failed;
      ++sent;
    }
  });

  dir_->Rotate(MakeSelfSignedCert("collector.local", 2));
  ASSERT_TRUE(WaitFor([&] { return tls_->generation() == 2; }));
  auto new_client = TestClient::Connect(server_->port(), true);
  ASSERT_TRUE(new_client.ok()) << new_client.status();
  EXPECT_EQ((*new_client)->PeerSerial(), 2);
  EXPECT_TRUE((*new_client)->Get("/new").ok());

  // A broken pair is rejected; the previous certificate stays.
  dir_->Rotate("-----BEGIN CERTIFICATE-----\ngarbage", "garbage");
  ASSERT_TRUE(WaitFor([&] { return tls_->rejected() >= 1; }));
  EXPECT_EQ(tls_->generation(), 2);
  auto after_bad = TestClient::Connect(server_->port(), true);
  ASSERT_TRUE(after_bad.ok()) << after_bad.status();
  EXPECT_EQ((*after_bad)->PeerSerial(), 2);

  // And a good pair after the broken one is picked up.
  dir_->Rotate(MakeSelfSignedCert("collector.local", 3));
  ASSERT_TRUE(WaitFor([&] { return tls_->generation() == 3; }));
  auto third = TestClient::Connect(server_->port(), true);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)->PeerSerial(), 3);

  stop = true;
  keep_alive.join();
  EXPECT_GT(sent.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ((*old_client)->PeerSerial(), 1);
}

TEST_F(TlsServerTest, PlainHttpOnTlsPortIsDisconnected) {
  absl::StatusOr<std::string> raw = testutil::RawExchange(
      server_->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  // The server closes (possibly after a TLS alert); it never answers HTTP.
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, ::testing::Not(HasSubstr("HTTP/1.1")));
  raw = testutil::RawExchange(server_->port(), std::string(100000, '\0'));
  ASSERT_TRUE(raw.ok()) << raw.status();
  // Still serving TLS.
  auto c = TestClient::Connect(server_->port(), true);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->Get("/").ok());
}

TEST_F(TlsServerTest, SixteenConcurrentTlsClients) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      auto c = TestClient::Connect(server_->port(), true);
      if (!c.ok()) return;
      for (int i = 0; i < 10; ++i) {
        if (!(*c)->Get("/c").ok()) return;
      }
      ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 16);
}

}  // namespace
}  // namespace vllm_profiler::http
