#include "webhook/certs.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/filesystem.h"

namespace vllm_profiler::webhook {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using CertPtr = std::unique_ptr<X509, Free>;
using BioPtr = std::unique_ptr<BIO, Free>;

absl::Status SslError(absl::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, ": ", buf));
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256")); }

absl::Status AddExt(X509* cert, X509* issuer, int nid,
                    const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return SslError(absl::StrCat("extension ", value));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return SslError("X509_add_ext");
  return absl::OkStatus();
}

// A certificate for `key` named `cn`, valid `days`, signed by
// issuer_key (self-signed when issuer is null).
absl::StatusOr<CertPtr> MakeCert(EVP_PKEY* key, const std::string& cn, int days,
                                 X509* issuer, EVP_PKEY* issuer_key, bool is_ca,
                                 const std::string& sans) {
  CertPtr cert(X509_new());
  if (!cert) return SslError("X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return SslError("RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), int64_t{days} * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509* iss = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  absl::Status s;
  if (is_ca) {
    s = AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    if (s.ok()) {
      s = AddExt(cert.get(), iss, NID_key_usage,
                 "critical,keyCertSign,cRLSign,digitalSignature");
    }
  } else {
    s = AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    if (s.ok()) {
      s = AddExt(cert.get(), iss, NID_key_usage,
                 "critical,digitalSignature,keyEncipherment");
    }
    if (s.ok()) s = AddExt(cert.get(), iss, NID_ext_key_usage, "serverAuth");
    if (s.ok()) s = AddExt(cert.get(), iss, NID_subject_alt_name, sans);
  }
  if (s.ok()) s = AddExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  if (s.ok() && !is_ca) {
    s = AddExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always");
  }
  if (!s.ok()) return s;
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    return SslError("X509_sign");
  }
  return cert;
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return SslError("PEM_write_X509");
  return BioToString(bio.get());
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                nullptr)) {
    return SslError("PEM_write_PrivateKey");
  }
  return BioToString(bio.get());
}

bool LooksLikeIp(const std::string& s) {
  return s.find_first_not_of("0123456789.") == std::string::npos ||
         s.find(':') != std::string::npos;
}

}  // namespace

absl::Status GenerateCerts(const CertOptions& o) {
  if (o.service.empty() || o.service_namespace.empty()) {
    return absl::InvalidArgumentError(
        "--service and --service_namespace "
        "must not be empty");
  }
  if (o.ca_days < 1 || o.cert_days < 1) {
    return absl::InvalidArgumentError("validity days must be at least 1");
  }
  const std::string dir = o.out_dir.empty() ? "." : o.out_dir;
  Filesystem* fs = Filesystem::Default();
  if (absl::Status s = fs->CreateDirs(dir); !s.ok()) return s;
  const std::string ca_crt = dir + "/ca.crt", ca_key = dir + "/ca.key";

  KeyPtr ca_pkey;
  CertPtr ca_cert;
  if (o.reuse_ca) {
    BioPtr kb(BIO_new_file(ca_key.c_str(), "r"));
    BioPtr cb(BIO_new_file(ca_crt.c_str(), "r"));
    if (!kb || !cb) {
      ERR_clear_error();
      return absl::NotFoundError(
          absl::StrCat("--reuse_ca: cannot read ", ca_crt, " and ", ca_key));
    }
    ca_pkey.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
    ca_cert.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
    if (!ca_pkey || !ca_cert) return SslError("--reuse_ca: bad CA PEM");
  } else {
    ca_pkey = NewKey();
    if (!ca_pkey) return SslError("EC key generation");
    auto ca = MakeCert(ca_pkey.get(), absl::StrCat(o.service, "-ca"), o.ca_days,
                       nullptr, ca_pkey.get(), /*is_ca=*/true, "");
    if (!ca.ok()) return ca.status();
    ca_cert = std::move(*ca);
  }

  const std::string svc = o.service, ns = o.service_namespace;
  std::vector<std::string> sans = {
      "DNS:" + svc, absl::StrCat("DNS:", svc, ".", ns),
      absl::StrCat("DNS:", svc, ".", ns, ".svc"),
      absl::StrCat("DNS:", svc, ".", ns, ".svc.cluster.local")};
  for (const std::string& extra : o.extra_sans) {
    if (absl::StartsWith(extra, "DNS:") || absl::StartsWith(extra, "IP:")) {
      sans.push_back(extra);
    } else {
      sans.push_back((LooksLikeIp(extra) ? "IP:" : "DNS:") + extra);
    }
  }
  KeyPtr key = NewKey();
  if (!key) return SslError("EC key generation");
  auto cert = MakeCert(key.get(), absl::StrCat(svc, ".", ns, ".svc"),
                       o.cert_days, ca_cert.get(), ca_pkey.get(),
                       /*is_ca=*/false, absl::StrJoin(sans, ","));
  if (!cert.ok()) return cert.status();

  auto cert_pem = CertPem(cert->get());
  auto key_pem = KeyPem(key.get());
  if (!cert_pem.ok()) return cert_pem.status();
  if (!key_pem.ok()) return key_pem.status();
  if (!o.reuse_ca) {
    auto ca_pem = CertPem(ca_cert.get());
    auto ca_key_pem = KeyPem(ca_pkey.get());
    if (!ca_pem.ok()) return ca_pem.status();
    if (!ca_key_pem.ok()) return ca_key_pem.status();
    absl::Status s = fs->WriteFileAtomically(ca_key, *ca_key_pem, 0600);
    if (s.ok()) s = fs->WriteFileAtomically(ca_crt, *ca_pem, 0644);
    if (!s.ok()) return s;
  }
  // Key first: a watcher that sees the new certificate before the new key
  // would fail once and retry; this order keeps that window smallest.
  absl::Status s = fs->WriteFileAtomically(dir + "/tls.key", *key_pem, 0600);
  if (s.ok()) s = fs->WriteFileAtomically(dir + "/tls.crt", *cert_pem, 0644);
  return s;
}

}  // namespace vllm_profiler::webhook
