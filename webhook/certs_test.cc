#include "webhook/certs.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace vllm_profiler::webhook {
namespace {

X509* ReadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509* c = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return c;
}

std::string TestDir(const char* name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

TEST(CertsTest, WritesCaAndServingCertWithSans) {
  CertOptions o;
  o.out_dir = TestDir("certs");
  o.extra_sans = {"localhost", "127.0.0.1"};
  ASSERT_TRUE(GenerateCerts(o).ok());
  X509* ca = ReadCert(o.out_dir + "/ca.crt");
  X509* leaf = ReadCert(o.out_dir + "/tls.crt");
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(leaf, nullptr);
  // The leaf verifies against the CA.
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  EXPECT_EQ(X509_verify_cert(ctx), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  for (const char* host :
       {"vllm-profiler-webhook", "vllm-profiler-webhook.vllm-profiler",
        "vllm-profiler-webhook.vllm-profiler.svc",
        "vllm-profiler-webhook.vllm-profiler.svc.cluster.local", "localhost"}) {
    EXPECT_EQ(X509_check_host(leaf, host, 0, 0, nullptr), 1) << host;
  }
  EXPECT_EQ(X509_check_host(leaf, "other.svc", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
  struct stat st;
  ASSERT_EQ(stat((o.out_dir + "/tls.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  // Rotation with the same CA: the new leaf differs and still verifies.
  o.reuse_ca = true;
  ASSERT_TRUE(GenerateCerts(o).ok());
  X509* leaf2 = ReadCert(o.out_dir + "/tls.crt");
  ASSERT_NE(leaf2, nullptr);
  EXPECT_NE(X509_cmp(leaf, leaf2), 0);
  X509_STORE_CTX_cleanup(ctx);
  X509_STORE_CTX_init(ctx, store, leaf2, nullptr);
  EXPECT_EQ(X509_verify_cert(ctx), 1);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(ca);
  X509_free(leaf);
  X509_free(leaf2);
}

TEST(CertsTest, ReuseCaWithoutCaFails) {
  CertOptions o;
  o.out_dir = TestDir("empty");
  o.reuse_ca = true;
  absl::Status s = GenerateCerts(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "--reuse_ca: cannot read " + o.out_dir +
                             "/ca.crt and " + o.out_dir + "/ca.key");
}

}  // namespace
}  // namespace vllm_profiler::webhook
