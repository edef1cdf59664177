// gen-certs: a self-signed CA and a serving certificate for the webhook's
// Service, written with OpenSSL's C API (no openssl binary needed).
//
// Files written into Options::out_dir (each atomically: temp file + rename,
// so a server watching them never reads half a file):
//   ca.crt, ca.key    the CA (its certificate is the caBundle of the
//                     MutatingWebhookConfiguration)
//   tls.crt, tls.key  the serving pair, signed by the CA, with SANs
//                     <service>, <service>.<namespace>,
//                     <service>.<namespace>.svc,
//                     <service>.<namespace>.svc.cluster.local and any extra
// Keys are ECDSA P-256 and written with mode 0600.
#ifndef VLLM_PROFILER_WEBHOOK_CERTS_H_
#define VLLM_PROFILER_WEBHOOK_CERTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace vllm_profiler::webhook {

struct CertOptions {
  std::string service = "vllm-profiler-webhook";
  std::string service_namespace = "vllm-profiler";
  // Extra subjectAltNames: "DNS:name" / "IP:1.2.3.4", or a bare name (DNS)
  // or address (IP).
  std::vector<std::string> extra_sans;
  int ca_days = 3650;
  int cert_days = 365;
  std::string out_dir = ".";
  // Sign a new serving pair with the CA already in out_dir (rotation keeps
  // the caBundle valid) instead of creating a new CA.
  bool reuse_ca = false;
};

absl::Status GenerateCerts(const CertOptions& options);

}  // namespace vllm_profiler::webhook

#endif  // VLLM_PROFILER_WEBHOOK_CERTS_H_
