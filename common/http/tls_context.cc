#include "common/http/tls_context.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace vllm_profiler::http {
namespace {

namespace ssl = boost::asio::ssl;

// Mozilla "intermediate" TLS 1.2 suites: forward secrecy and AEAD only.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Drains OpenSSL's error queue into one readable string.
std::string OpenSslErrors() {
  std::string out;
  unsigned long err;
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

absl::Status CheckReadable(const std::string& what, const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS ", what, " file not configured"));
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("TLS ", what, " file ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<ssl::context>> TlsContext::Load(
    const std::string& cert_file, const std::string& key_file) {
  if (absl::Status s = CheckReadable("certificate", cert_file); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckReadable("key", key_file); !s.ok()) return s;
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return absl::InternalError("TLS: cannot set cipher list: " +
                               OpenSslErrors());
  }
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS certificate file ", cert_file,
        " is not a valid PEM certificate chain: ", OpenSslErrors()));
  }
  // Parsed separately from installing it, so a mismatched pair is reported
  // as such rather than as an unreadable key.
  BIO* bio = BIO_new_file(key_file.c_str(), "r");
  EVP_PKEY* key = bio == nullptr
                      ? nullptr
                      : PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  if (bio != nullptr) BIO_free(bio);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS key file ", key_file,
                     " is not a valid PEM private key: ", OpenSslErrors()));
  }
  const bool installed = SSL_CTX_use_PrivateKey(native, key) == 1 &&
                         SSL_CTX_check_private_key(native) == 1;
  EVP_PKEY_free(key);
  if (!installed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS key file ", key_file, " does not match the certificate in ",
        cert_file, ": ", OpenSslErrors()));
  }
  return ctx;
}

TlsContext::FileStamp TlsContext::Stamp(const std::string& path) {
  FileStamp stamp;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    stamp.dev = st.st_dev;
    stamp.ino = st.st_ino;
    stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                     st.st_mtim.tv_nsec;
    stamp.size = st.st_size;
  }
  return stamp;
}

TlsContext::TlsContext(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Create(
    Options options) {
  std::unique_ptr<TlsContext> tls(new TlsContext(std::move(options)));
  // Stamp before loading: a change racing with the load is seen next poll.
  FileStamp cert = Stamp(tls->options_.cert_file);
  FileStamp key = Stamp(tls->options_.key_file);
  absl::StatusOr<std::shared_ptr<ssl::context>> ctx =
      Load(tls->options_.cert_file, tls->options_.key_file);
  if (!ctx.ok()) return ctx.status();
  {
    MutexLock lock(&tls->mu_);
    tls->current_ = *std::move(ctx);
    tls->generation_ = 1;
    tls->cert_stamp_ = cert;
    tls->key_stamp_ = key;
  }
  if (tls->options_.poll_interval > absl::ZeroDuration()) {
    tls->poller_ = std::thread([t = tls.get()] { t->PollLoop(); });
  }
  return tls;
}

TlsContext::~TlsContext() {
  stop_.Notify();
  if (poller_.joinable()) poller_.join();
}

std::shared_ptr<ssl::context> TlsContext::Current() const {
  MutexLock lock(&mu_);
  return current_;
}

int64_t TlsContext::generation() const {
  MutexLock lock(&mu_);
  return generation_;
}

int64_t TlsContext::rejected() const {
  MutexLock lock(&mu_);
  return rejected_;
}

absl::Status TlsContext::ReloadIfChanged() {
  FileStamp cert = Stamp(options_.cert_file);
  FileStamp key = Stamp(options_.key_file);
  {
    MutexLock lock(&mu_);
    if (cert == cert_stamp_ && key == key_stamp_) return absl::OkStatus();
    cert_stamp_ = cert;
    key_stamp_ = key;
  }
  // Loading reads files: done without the lock so Current() never waits on
  // disk.
  absl::StatusOr<std::shared_ptr<ssl::context>> ctx =
      Load(options_.cert_file, options_.key_file);
  if (!ctx.ok()) {
    {
      MutexLock lock(&mu_);
      ++rejected_;
    }
    VP_LOG(ERROR) << "TLS reload failed, keeping the previous certificate: "
                  << ctx.status().message();
    return ctx.status();
  }
  MutexLock lock(&mu_);
  current_ = *std::move(ctx);
  ++generation_;
  VP_LOG(INFO) << "TLS certificate reloaded from " << options_.cert_file
               << " (generation " << generation_ << ")";
  return absl::OkStatus();
}

void TlsContext::PollLoop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.poll_interval)) {
    // A rotation is often two renames (cert, then key): a failure here is
    // retried when the second file's stamp changes.
    ReloadIfChanged().IgnoreError();
  }
}

}  // namespace vllm_profiler::http
