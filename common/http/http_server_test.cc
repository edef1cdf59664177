#include "common/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/gzip.h"
#include "common/http/test_util.h"
#include "common/http/tls_context.h"
#include "common/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testutil::ClientResponse;
using testutil::RawExchange;
using testutil::TestClient;

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

// Deterministic pseudo-random bytes (compressible enough to exercise gzip,
// varied enough to catch reordering).
std::string MakeData(size_t n) {
  std::string s(n, '\0');
  std::mt19937 rng(42);
  for (size_t i = 0; i < n; ++i) {
    s[i] =
        "{\"name\":\"aten::mm\",\"ph\":\"X\",\"ts\":0123456789}\n"[rng() % 44];
  }
  return s;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(Handler handler) {
    absl::StatusOr<std::unique_ptr<HttpServer>> s =
        HttpServer::Start(options_, std::move(handler));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    ASSERT_NE(server_->port(), 0);
  }
  std::unique_ptr<TestClient> Client() {
    auto c = TestClient::Connect(server_->port(), /*tls=*/false);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // Serves TLS from a fresh self-signed pair.
  void UseTls() {
    testutil::CertPair pair = testutil::MakeSelfSignedCert("localhost", 1);
    testutil::WriteFileOrDie(TmpDir() + "/tls.crt", pair.cert_pem);
    testutil::WriteFileOrDie(TmpDir() + "/tls.key", pair.key_pem);
    auto ctx = TlsContext::Create({.cert_file = TmpDir() + "/tls.crt",
                                   .key_file = TmpDir() + "/tls.key"});
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    tls_ = *std::move(ctx);
    options_.tls = tls_.get();
  }

  HttpServer::Options options_;
  std::unique_ptr<TlsContext> tls_;  // Outlives server_.
  std::unique_ptr<HttpServer> server_;
};

// Echoes what the handler saw.
Response Echo(const Request& req) {
  const std::string* custom = req.Header("x-custom");
  return Response::Text(
      200, absl::StrCat(req.method, " ", req.path, " q=", req.query,
                        " name=", req.QueryParam("name").value_or("-"),
                        " custom=", custom ? *custom : "-", " head=", req.head,
                        " body=", req.body));
}

TEST_F(HttpServerTest, PlainGetAndPost) {
  StartServer(Echo);
  auto c = Client();
  absl::StatusOr<ClientResponse> r =
      c->Send("GET", "/a%20b/c?name=x%2By+z&k=1", "", {{"X-Custom", "v1"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body,
            "GET /a b/c q=name=x%2By+z&k=1 name=x+y z custom=v1 head=0 body=");
  EXPECT_EQ(r->headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_EQ(r->headers["server"], "vllm-profiler");

  r = c->Send("POST", "/submit", "payload-bytes");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body,
            "POST /submit q= name=- custom=- head=0 body=payload-bytes");
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Mutex mu;
  std::set<std::string> remotes;
  StartServer([&](const Request& req) {
    MutexLock lock(&mu);
    remotes.insert(req.remote);
    return Response::Text(200, req.path);
  });
  auto c = Client();
  for (int i = 0; i < 500; ++i) {
    absl::StatusOr<ClientResponse> r = c->Get(absl::StrCat("/n/", i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    ASSERT_EQ(r->body, absl::StrCat("/n/", i));
  }
  MutexLock lock(&mu);
  EXPECT_EQ(remotes.size(), 1u);
}

TEST_F(HttpServerTest, StreamsLargeFileByteForByte) {
  const std::string path = TmpDir() + "/large.bin";
  const std::string data = MakeData(48 << 20);
  testutil::WriteFileOrDie(path, data);
  options_.stream_chunk_bytes = 64 * 1024;
  StartServer([&](const Request&) {
    return Response::File(path, "application/octet-stream");
  });
  auto c = Client();
  absl::StatusOr<ClientResponse> r = c->Get("/large");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-length"], std::to_string(data.size()));
  ASSERT_EQ(r->body.size(), data.size());
  EXPECT_TRUE(r->body == data);
  // The connection is still usable afterwards.
  r = c->Get("/large");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body.size(), data.size());
}

TEST_F(HttpServerTest, GzipsStreamedFileOnTheFly) {
  const std::string path = TmpDir() + "/gz.json";
  const std::string data = MakeData(8 << 20);
  testutil::WriteFileOrDie(path, data);
  StartServer([&](const Request& req) {
    Response r = Response::File(path, "application/json");
    r.gzip = req.AcceptsGzip();
    return r;
  });
  auto c = Client();
  absl::StatusOr<ClientResponse> r =
      c->Send("GET", "/t", "", {{"Accept-Encoding", "deflate, gzip;q=0.8"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->headers["content-encoding"], "gzip");
  EXPECT_EQ(r->headers["transfer-encoding"], "chunked");
  EXPECT_LT(r->body.size(), data.size());
  absl::StatusOr<std::string> plain = Gunzip(r->body);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(*plain == data);

  // gzip;q=0 means "not gzip".
  r = c->Send("GET", "/t", "", {{"Accept-Encoding", "gzip;q=0"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->headers.count("content-encoding"), 0u);
  EXPECT_TRUE(r->body == data);
}

TEST_F(HttpServerTest, GzipsStringBody) {
  StartServer([](const Request&) {
    Response r = Response::Json(200, std::string(10000, 'a'));
    r.gzip = true;
    return r;
  });
  auto c = Client();
  absl::StatusOr<ClientResponse> r = c->Get("/");
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<std::string> plain = Gunzip(r->body);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, std::string(10000, 'a'));
  EXPECT_EQ(r->headers["content-type"], "application/json");
}

TEST_F(HttpServerTest, HeadSendsHeadersOnly) {
  const std::string path = TmpDir() + "/head.bin";
  testutil::WriteFileOrDie(path, std::string(12345, 'x'));
  StartServer([&](const Request& req) {
    EXPECT_EQ(req.method, "GET");
    EXPECT_TRUE(req.head);
    if (req.path == "/file") return Response::File(path, "application/json");
    return Response::Text(200, "hello");
  });
  auto c = Client();
  absl::StatusOr<ClientResponse> r = c->Send("HEAD", "/file");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-length"], "12345");
  EXPECT_EQ(r->body, "");
  r = c->Send("HEAD", "/text");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->headers["content-length"], "5");
  EXPECT_EQ(r->body, "");
}

TEST_F(HttpServerTest, MissingFileIs404) {
  StartServer([&](const Request&) {
    return Response::File(TmpDir() + "/nope", "application/json");
  });
  auto c = Client();
  absl::StatusOr<ClientResponse> r = c->Get("/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "not found\n");
}

TEST_F(HttpServerTest, OversizedBodyIs413) {
  options_.max_body_bytes = 1024;
  StartServer(Echo);
  auto c = Client();
  absl::StatusOr<ClientResponse> r =
      c->Send("POST", "/", std::string(1024, 'a'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  c = Client();
  r = c->Send("POST", "/", std::string(200000, 'a'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, "request body too large: the limit is 1024 bytes\n");
  EXPECT_EQ(r->headers["connection"], "close");

  // Chunked bodies have no Content-Length: the parser's limit catches them.
  absl::StatusOr<std::string> raw = RawExchange(
      server_->port(),
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "800\r\n" +
          std::string(2048, 'b') + "\r\n0\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, StartsWith("HTTP/1.1 413 Payload Too Large\r\n"));
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponse) {
  StartServer(Echo);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string head =
      "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
      "Expect: 100-continue\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), 0),
            static_cast<ssize_t>(head.size()));
  // The interim response must come before we send the body.
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1) << "no 100 Continue";
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, n), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(::send(fd, "data", 4, 0), 4);
  std::string rest;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) rest.append(buf, n);
  ::close(fd);
  EXPECT_THAT(rest, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(rest, HasSubstr("body=data"));
}

TEST_F(HttpServerTest, GarbageIs400AndConnectionCloses) {
  StartServer(Echo);
  absl::StatusOr<std::string> raw =
      RawExchange(server_->port(), "\x16\x03\x01 garbage\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(*raw, HasSubstr("malformed HTTP request: bad method"));

  raw = RawExchange(server_->port(), "GET / HTTP/9.9\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, StartsWith("HTTP/1.1 400 Bad Request\r\n"));

  raw = RawExchange(server_->port(), "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(*raw,
              HasSubstr("malformed HTTP request: invalid percent-escape"));

  raw = RawExchange(server_->port(), "GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, HasSubstr("NUL byte in request target"));

  raw = RawExchange(server_->port(), "GET nopath HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, HasSubstr("the target must be an absolute path"));

  // Still serving.
  auto c = Client();
  absl::StatusOr<ClientResponse> r = c->Get("/ok");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, HugeHeaderIs431) {
  options_.max_header_bytes = 1024;
  StartServer(Echo);
  absl::StatusOr<std::string> raw = RawExchange(
      server_->port(),
      "GET / HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, StartsWith("HTTP/1.1 431 "));
}

TEST_F(HttpServerTest, UnknownMethodIs405) {
  StartServer(Echo);
  absl::StatusOr<std::string> raw =
      RawExchange(server_->port(), "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(*raw, HasSubstr("Allow: GET, HEAD, POST, PUT, DELETE, PATCH, "
                              "OPTIONS\r\n"));
  EXPECT_THAT(*raw, HasSubstr("method BREW not allowed\n"));
}

TEST_F(HttpServerTest, HandlerExceptionIs500) {
  StartServer(
      [](const Request&) -> Response { throw std::runtime_error("boom"); });
  auto c = Client();
  absl::StatusOr<ClientResponse> r = c->Get("/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, "internal server error\n");
}

TEST_F(HttpServerTest, SixteenConcurrentClients) {
  options_.threads = 4;
  const std::string path = TmpDir() + "/c.bin";
  const std::string data = MakeData(1 << 20);
  testutil::WriteFileOrDie(path, data);
  std::atomic<int> in_handler{0}, max_in_handler{0};
  StartServer([&](const Request& req) {
    int now = ++in_handler;
    int prev = max_in_handler.load();
    while (now > prev && !max_in_handler.compare_exchange_weak(prev, now)) {
    }
    absl::SleepFor(absl::Milliseconds(1));
    --in_handler;
    if (req.path == "/file") return Response::File(path, "application/json");
    return Response::Text(200, req.path);
  });
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      auto c = TestClient::Connect(server_->port(), false);
      if (!c.ok()) return;
      for (int i = 0; i < 20; ++i) {
        const std::string target =
            i % 5 == 0 ? "/file" : absl::StrCat("/", t, "/", i);
        absl::StatusOr<ClientResponse> r = (*c)->Get(target);
        if (!r.ok() || r->status != 200) return;
        if (target == "/file" ? r->body != data : r->body != target) return;
      }
      ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 16);
  EXPECT_GT(max_in_handler.load(), 1);
}

// A raw TCP connection to 127.0.0.1:port that sends nothing; -1 on failure.
int ConnectRaw(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closes `fd` within `timeout_ms` (EOF or reset).
bool ClosedWithin(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

// Blocks requests to /block until released; counts them in flight.
class Blocker {
 public:
  Response Handle(const Request& req) {
    if (req.path != "/block") return Response::Text(200, "ok\n");
    MutexLock lock(&mu_);
    ++in_flight_;
    cv_.SignalAll();
    cv_.WaitFor(&mu_, absl::Seconds(30),
                [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return released_; });
    return Response::Text(200, "released\n");
  }
  void AwaitInFlight(int n) {
    MutexLock lock(&mu_);
    cv_.WaitFor(&mu_, absl::Seconds(10),
                [this, n]()
                    ABSL_NO_THREAD_SAFETY_ANALYSIS { return in_flight_ >= n; });
  }
  void Release() {
    MutexLock lock(&mu_);
    released_ = true;
    cv_.SignalAll();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

TEST_F(HttpServerTest, AtTheLimitTheLongestWaitingConnectionMakesRoom) {
  options_.max_connections = 2;
  StartServer(Echo);
  auto a = Client();
  auto b = Client();
  ASSERT_TRUE(a->Get("/a").ok());
  ASSERT_TRUE(b->Get("/b").ok());
  EXPECT_EQ(server_->active_connections(), 2);
  // Both wait for their next request; `a` has waited longer and goes.
  auto c = Client();
  absl::StatusOr<ClientResponse> r = c->Get("/c");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server_->evicted_connections(), 1);
  EXPECT_EQ(server_->rejected_connections(), 0);
  EXPECT_FALSE(a->Get("/a2").ok());
  r = b->Get("/b2");
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreRefusedWhenAllAreBusy) {
  options_.max_connections = 2;
  options_.threads = 3;
  Blocker blocker;
  StartServer([&](const Request& req) { return blocker.Handle(req); });
  std::vector<std::thread> busy;
  for (int i = 0; i < 2; ++i) {
    busy.emplace_back([this] {
      auto c = TestClient::Connect(server_->port(), false);
      ASSERT_TRUE(c.ok());
      absl::StatusOr<ClientResponse> r = (*c)->Get("/block");
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->body, "released\n");
    });
  }
  blocker.AwaitInFlight(2);
  auto c = Client();
  EXPECT_FALSE(c->Get("/c").ok());
  EXPECT_EQ(server_->rejected_connections(), 1);
  EXPECT_EQ(server_->evicted_connections(), 0);
  blocker.Release();
  for (auto& t : busy) t.join();
  auto d = Client();
  absl::StatusOr<ClientResponse> r = d->Get("/d");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, UnderPressureANewHeaderWaitGetsTheShortDeadline) {
  options_.max_connections = 8;
  options_.header_timeout = absl::Seconds(60);
  options_.pressure_header_timeout = absl::Milliseconds(300);
  StartServer(Echo);
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) fds.push_back(ConnectRaw(server_->port()));
  // Accepted while at most half the slots were taken: the long deadline.
  for (int i = 0; i < 100 && server_->active_connections() < 4; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(server_->active_connections(), 4);
  // The fifth takes more than half: 300 ms.
  int fifth = ConnectRaw(server_->port());
  EXPECT_TRUE(ClosedWithin(fifth, 5000));
  EXPECT_FALSE(ClosedWithin(fds[0], 0));
  ::close(fifth);
  for (int fd : fds) ::close(fd);
}

TEST_F(HttpServerTest, PerPeerCapDisplacesThePeersOwnWaitingConnection) {
  options_.max_connections_per_peer = 3;
  options_.threads = 4;
  Blocker blocker;
  StartServer([&](const Request& req) { return blocker.Handle(req); });
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) fds.push_back(ConnectRaw(server_->port()));
  // A fourth from the same address closes the first.
  auto d = Client();
  absl::StatusOr<ClientResponse> r = d->Get("/d");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(ClosedWithin(fds[0], 5000));
  EXPECT_FALSE(ClosedWithin(fds[1], 0));
  EXPECT_EQ(server_->evicted_connections(), 1);
  for (int fd : fds) ::close(fd);
  d.reset();
  for (int i = 0; i < 200 && server_->active_connections() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  // All three busy: the peer's fourth is refused.
  std::vector<std::thread> busy;
  for (int i = 0; i < 3; ++i) {
    busy.emplace_back([this] {
      auto c = TestClient::Connect(server_->port(), false);
      ASSERT_TRUE(c.ok());
      ASSERT_TRUE((*c)->Get("/block").ok());
    });
  }
  blocker.AwaitInFlight(3);
  auto e = Client();
  EXPECT_FALSE(e->Get("/e").ok());
  EXPECT_EQ(server_->rejected_connections(), 1);
  blocker.Release();
  for (auto& t : busy) t.join();
}

// An attacker keeps more silent connections open than the server has slots,
// opening new ones as fast as it can (each displaces the longest-waiting
// one). A fresh client still gets its /healthz answered, every time.
class SlowlorisTest : public HttpServerTest,
                      public ::testing::WithParamInterface<bool> {};

TEST_P(SlowlorisTest, FreshClientGetsThroughWhileSilentConnectionsChurn) {
  const bool tls = GetParam();
#if defined(__SANITIZE_THREAD__)
  // A load test bound by time: under TSan (5-15x slower) a TLS accept is
  // too slow for the attacker to fill the slots, and the plain case missed
  // its bound once on a loaded machine (29 s). Both run in the default and
  // ASan builds; TSan covers the same server code in the other cases.
  (void)tls;
  GTEST_SKIP() << "slowloris is timing-bound; not under TSan";
#endif
  if (tls) UseTls();
  options_.max_connections = 64;
  StartServer([](const Request& req) {
    return Response::Text(req.path == "/healthz" ? 200 : 404, "ok\n");
  });
  const uint16_t port = server_->port();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> opened{0};
  std::thread attacker([&] {
    std::deque<int> fds;
    while (!stop.load()) {
      int fd = ConnectRaw(port);
      if (fd >= 0) {
        fds.push_back(fd);
        opened.fetch_add(1);
      }
      if (fds.size() > 96) {
        ::close(fds.front());
        fds.pop_front();
      }
    }
    for (int fd : fds) ::close(fd);
  });
  // Every slot is taken before the first fresh client comes.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->evicted_connections() < 64 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  int ok = 0;
  std::string last_error;
  for (int i = 0; i < 20; ++i) {
    auto c = TestClient::Connect(port, tls);
    if (!c.ok()) {
      last_error = c.status().ToString();
      continue;
    }
    absl::StatusOr<ClientResponse> r = (*c)->Get("/healthz");
    if (r.ok() && r->status == 200) {
      ++ok;
    } else {
      last_error = r.ok() ? absl::StrCat(r->status) : r.status().ToString();
    }
  }
  stop.store(true);
  attacker.join();
  EXPECT_EQ(ok, 20) << last_error;
  EXPECT_GE(server_->evicted_connections(), 64);
  EXPECT_GT(opened.load(), 64);
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, SlowlorisTest, ::testing::Bool());

// A client that writes its whole (too large) body before reading, as
// Python's http.client does, must read the 413, over TLS too.
TEST_P(SlowlorisTest, WriteFirstClientReadsTheEarly413) {
  const bool tls = GetParam();
  if (tls) UseTls();
  options_.max_body_bytes = 1 << 20;
  StartServer(Echo);
  for (int i = 0; i < 3; ++i) {
    auto c = TestClient::Connect(server_->port(), tls);
    ASSERT_TRUE(c.ok()) << c.status();
    // TestClient writes the whole request, then reads.
    absl::StatusOr<ClientResponse> r =
        (*c)->Send("POST", "/mutate", std::string(8 << 20, 'x'));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->body, "request body too large: the limit is 1048576 bytes\n");
  }
}

TEST_F(HttpServerTest, IncompleteHeaderTimesOut) {
  options_.header_timeout = absl::Milliseconds(200);
  StartServer(Echo);
  absl::Time start = absl::Now();
  // No half-close: only the header timeout can end this exchange (else the
  // client gives up after 5 s with DEADLINE_EXCEEDED).
  absl::StatusOr<std::string> raw =
      RawExchange(server_->port(), "GET / HT", 5000, /*half_close=*/false);
  // OK (not DEADLINE_EXCEEDED): the server closed it, and not before the
  // header timeout (a timer never fires early).
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(*raw, "");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  options_.idle_timeout = absl::Milliseconds(200);
  StartServer(Echo);
  auto c = Client();
  ASSERT_TRUE(c->Get("/1").ok());
  // The server closes the idle connection (it stops counting it).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->active_connections() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(server_->active_connections(), 0);
  EXPECT_FALSE(c->Get("/2").ok());
}

TEST_F(HttpServerTest, ShutdownClosesIdleConnectionsPromptly) {
  options_.shutdown_grace = absl::Seconds(10);
  StartServer(Echo);
  auto c = Client();
  ASSERT_TRUE(c->Get("/1").ok());
  absl::Time start = absl::Now();
  server_->Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_FALSE(c->Get("/2").ok());
  server_->Shutdown();  // Idempotent.
}

TEST_F(HttpServerTest, ShutdownLetsResponseInFlightFinish) {
  absl::Notification entered;
  StartServer([&](const Request&) {
    entered.Notify();
    // Answer only once Shutdown() has begun: it stops accepting first.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      int fd = ConnectRaw(server_->port());
      if (fd < 0) break;
      ::close(fd);
      absl::SleepFor(absl::Milliseconds(5));
    }
    return Response::Text(200, "late");
  });
  absl::StatusOr<ClientResponse> result;
  std::thread t([&] {
    auto c = Client();
    result = c->Get("/");
  });
  entered.WaitForNotification();
  server_->Shutdown();
  t.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->body, "late");
  EXPECT_EQ(result->headers["connection"], "close");
}

TEST_F(HttpServerTest, PortInUseFails) {
  StartServer(Echo);
  HttpServer::Options o;
  o.port = server_->port();
  absl::StatusOr<std::unique_ptr<HttpServer>> second =
      HttpServer::Start(o, Echo);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr(absl::StrCat("cannot listen for HTTP on 127.0.0.1:",
                                     server_->port())));
}

TEST(HttpServerOptionsTest, BadAddressFails) {
  HttpServer::Options o;
  o.bind_address = "not-an-ip";
  absl::StatusOr<std::unique_ptr<HttpServer>> s = HttpServer::Start(o, Echo);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("invalid HTTP bind address 'not-an-ip'"));
}

TEST(PercentDecodeTest, Cases) {
  EXPECT_EQ(*PercentDecode("/a%2Fb%41"), "/a/bA");
  EXPECT_EQ(PercentDecode("%4").status().message(),
            "truncated percent-escape in request target");
  EXPECT_EQ(PercentDecode("%g1").status().message(),
            "invalid percent-escape in request target");
  EXPECT_EQ(PercentDecode("%00").status().message(),
            "NUL byte in request target");
}

}  // namespace
}  // namespace vllm_profiler::http
