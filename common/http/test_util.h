// Test helpers for the HTTP server: self-signed certificates made with
// OpenSSL's API, a small synchronous Beast client (plain or TLS), raw socket
// exchanges and gzip decoding. testonly.
#ifndef VLLM_PROFILER_COMMON_HTTP_TEST_UTIL_H_
#define VLLM_PROFILER_COMMON_HTTP_TEST_UTIL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vllm_profiler::http::testutil {

struct CertPair {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed P-256 certificate for `common_name` (also its DNS SAN) with
// the given serial number, valid for a day.
CertPair MakeSelfSignedCert(const std::string& common_name, int64_t serial);

// Writes `content` to `path` (replacing it), dying on failure.
void WriteFileOrDie(const std::string& path, const std::string& content);

struct ClientResponse {
  int status = 0;
  // Lower-cased field names.
  std::map<std::string, std::string> headers;
  std::string body;
};

// A synchronous keep-alive HTTP/1.1 client on one connection.
class TestClient {
 public:
  // Connects to 127.0.0.1:port; with `tls`, performs a handshake without
  // verifying the certificate.
  static absl::StatusOr<std::unique_ptr<TestClient>> Connect(uint16_t port,
                                                             bool tls);
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  absl::StatusOr<ClientResponse> Send(
      const std::string& method, const std::string& target,
      const std::string& body = "",
      const std::map<std::string, std::string>& headers = {});
  absl::StatusOr<ClientResponse> Get(const std::string& target) {
    return Send("GET", target);
  }

  // Serial number of the server certificate of this connection (TLS only),
  // -1 otherwise.
  int64_t PeerSerial() const;

  struct Impl;

 private:
  explicit TestClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Connects, sends `bytes`, half-closes (unless `half_close` is false), and
// returns everything the server sends until it closes (DEADLINE_EXCEEDED
// after `timeout_ms`).
absl::StatusOr<std::string> RawExchange(uint16_t port, const std::string& bytes,
                                        int timeout_ms = 5000,
                                        bool half_close = true);

}  // namespace vllm_profiler::http::testutil

#endif  // VLLM_PROFILER_COMMON_HTTP_TEST_UTIL_H_
