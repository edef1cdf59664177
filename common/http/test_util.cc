#include "common/http/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"

namespace vllm_profiler::http::testutil {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {

void Die(const char* what) {
  std::fprintf(stderr, "test_util: %s failed\n", what);
  std::abort();
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

CertPair MakeSelfSignedCert(const std::string& common_name, int64_t serial) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) Die("EVP_EC_gen");
  X509* x509 = X509_new();
  X509_set_version(x509, 2);
  ASN1_INTEGER_set_int64(X509_get_serialNumber(x509), serial);
  X509_gmtime_adj(X509_getm_notBefore(x509), -60);
  X509_gmtime_adj(X509_getm_notAfter(x509), 24 * 3600);
  X509_set_pubkey(x509, key);
  X509_NAME* name = X509_get_subject_name(x509);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x509, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x509, x509, nullptr, nullptr, 0);
  const std::string san = "DNS:" + common_name;
  X509_EXTENSION* ext =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  if (ext == nullptr) Die("X509V3_EXT_conf_nid");
  X509_add_ext(x509, ext, -1);
  X509_EXTENSION_free(ext);
  if (X509_sign(x509, key, EVP_sha256()) == 0) Die("X509_sign");

  CertPair pair;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x509);
  pair.cert_pem = BioToString(bio);
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  pair.key_pem = BioToString(bio);
  BIO_free(bio);
  X509_free(x509);
  EVP_PKEY_free(key);
  return pair;
}

void WriteFileOrDie(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) Die(("writing " + path).c_str());
}

struct TestClient::Impl {
  net::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  template <class Stream>
  absl::StatusOr<ClientResponse> DoSend(
      Stream& stream, bhttp::request<bhttp::string_body>& req) {
    beast::error_code ec;
    bhttp::write(stream, req, ec);
    if (ec) return absl::UnavailableError("write: " + ec.message());
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    if (req.method() == bhttp::verb::head) parser.skip(true);
    bhttp::read(stream, buffer, parser, ec);
    if (ec) return absl::UnavailableError("read: " + ec.message());
    ClientResponse out;
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      out.headers[absl::AsciiStrToLower(std::string(f.name_string()))] =
          std::string(f.value());
    }
    out.body = std::move(res.body());
    return out;
  }
};

TestClient::TestClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TestClient::~TestClient() = default;

absl::StatusOr<std::unique_ptr<TestClient>> TestClient::Connect(uint16_t port,
                                                                bool tls) {
  auto impl = std::make_unique<Impl>();
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
  beast::error_code ec;
  if (tls) {
    impl->ctx.set_verify_mode(ssl::verify_none);
    impl->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(
        impl->ioc, impl->ctx);
    beast::get_lowest_layer(*impl->secure)
        .expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(*impl->secure).socket().connect(ep, ec);
    if (ec) return absl::UnavailableError("connect: " + ec.message());
    impl->secure->handshake(ssl::stream_base::client, ec);
    if (ec) return absl::UnavailableError("handshake: " + ec.message());
  } else {
    impl->plain = std::make_unique<beast::tcp_stream>(impl->ioc);
    impl->plain->socket().connect(ep, ec);
    if (ec) return absl::UnavailableError("connect: " + ec.message());
  }
  return std::unique_ptr<TestClient>(new TestClient(std::move(impl)));
}

absl::StatusOr<ClientResponse> TestClient::Send(
    const std::string& method, const std::string& target,
    const std::string& body,
    const std::map<std::string, std::string>& headers) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, "localhost");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.prepare_payload();
  }
  req.keep_alive(true);
  if (impl_->secure) return impl_->DoSend(*impl_->secure, req);
  return impl_->DoSend(*impl_->plain, req);
}

int64_t TestClient::PeerSerial() const {
  if (!impl_->secure) return -1;
  X509* cert = SSL_get1_peer_certificate(impl_->secure->native_handle());
  if (cert == nullptr) return -1;
  int64_t serial = -1;
  ASN1_INTEGER_get_int64(&serial, X509_get0_serialNumber(cert));
  X509_free(cert);
  return serial;
}

absl::StatusOr<std::string> RawExchange(uint16_t port, const std::string& bytes,
                                        int timeout_ms, bool half_close) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError("connect");
  }
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n =
        ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // The server may close early; read what it said.
    off += static_cast<size_t>(n);
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) {
      ::close(fd);
      return absl::DeadlineExceededError("no close from server; got: " + out);
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace vllm_profiler::http::testutil
