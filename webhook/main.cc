// vllm-profiler webhook binary.
//
//   webhook [serve] [--flags]     HTTPS admission server (see config.h)
//   webhook gen-certs --out_dir=DIR [--service=S --service_namespace=N
//                     --extra_sans=a,b --reuse_ca]
//   webhook review FILE...        runs the admission logic over
//                                 AdmissionReview files, one line per file:
//                                 "<http status>\t<response body>" (tests,
//                                 debugging a pod without a cluster)
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/filesystem.h"
#include "common/http/http_server.h"
#include "common/http/tls_context.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"
#include "webhook/admission.h"
#include "webhook/certs.h"
#include "webhook/config.h"
#include "webhook/handler.h"
#include "webhook/metrics.h"

ABSL_FLAG(std::string, out_dir, ".", "gen-certs: output folder");
ABSL_FLAG(std::string, service, "vllm-profiler-webhook",
          "gen-certs: the webhook's Service name");
ABSL_FLAG(std::string, service_namespace, "vllm-profiler",
          "gen-certs: the Service's namespace");
ABSL_FLAG(std::vector<std::string>, extra_sans, {},
          "gen-certs: extra SANs (DNS:x, IP:y, or bare names/addresses)");
ABSL_FLAG(int, ca_days, 3650, "gen-certs: CA validity in days");
ABSL_FLAG(int, cert_days, 365, "gen-certs: serving certificate validity");
ABSL_FLAG(bool, reuse_ca, false,
          "gen-certs: sign a new serving pair with the CA in --out_dir");
ABSL_FLAG(int, threads, 2, "serve: HTTP server threads");
// The API server speaks HTTP/1.1 and holds one connection per concurrent
// review. At 1,000 pod creations/s, Little's law with our measured latency
// gives 1,000/s x 0.43 ms (p99) = 0.4 connections, x 33 ms (p99.9 at
// saturation) = 33; 128 leaves 4x over the worst tail and still lets no
// single pod hold more than an eighth of the 1,024 slots.
ABSL_FLAG(int, max_connections_per_peer, 128,
          "serve: connections one peer IP may hold (0 = no limit); at the cap "
          "the peer's longest-waiting idle connection is closed");

namespace vllm_profiler::webhook {
namespace {

int GenCerts() {
  CertOptions o;
  o.out_dir = absl::GetFlag(FLAGS_out_dir);
  o.service = absl::GetFlag(FLAGS_service);
  o.service_namespace = absl::GetFlag(FLAGS_service_namespace);
  o.extra_sans = absl::GetFlag(FLAGS_extra_sans);
  o.ca_days = absl::GetFlag(FLAGS_ca_days);
  o.cert_days = absl::GetFlag(FLAGS_cert_days);
  o.reuse_ca = absl::GetFlag(FLAGS_reuse_ca);
  absl::Status s = GenerateCerts(o);
  if (!s.ok()) {
    std::fprintf(stderr, "gen-certs: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "gen-certs: wrote %s/{%stls.crt,tls.key}\n",
               o.out_dir.c_str(), o.reuse_ca ? "" : "ca.crt,ca.key,");
  return 0;
}

int Review(const Config& config, const std::vector<char*>& files) {
  Admitter admitter(config.injection);
  int rc = 0;
  for (size_t i = 2; i < files.size(); ++i) {
    std::ifstream in(files[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "review: cannot read %s\n", files[i]);
      rc = 1;
      continue;
    }
    std::stringstream buf;
    buf << in.rdbuf();
    AdmissionResult r = admitter.Review(buf.str());
    std::string body(absl::StripSuffix(r.body, "\n"));
    std::cout << r.http_status << "\t" << body << "\n";
  }
  return rc;
}

// {"port":N}, written atomically so a reader never sees half of it.
absl::Status WritePortFile(const std::string& path, int port) {
  return Filesystem::Default()->WriteFileAtomically(
      path, nlohmann::json{{"port", port}}.dump() + "\n");
}

int Serve(const Config& config) {
  auto tls = http::TlsContext::Create(
      {.cert_file = config.tls_cert_file, .key_file = config.tls_key_file});
  if (!tls.ok()) {
    VP_LOG(ERROR) << "TLS: " << tls.status().message();
    return 1;
  }
  Admitter admitter(config.injection);
  WebhookMetrics metrics;
  WebhookHandler handler(&admitter, &metrics,
                         {.max_body_bytes = config.max_body_bytes});

  http::HttpServer::Options options;
  const size_t colon = config.listen_address.rfind(':');
  options.bind_address = config.listen_address.substr(0, colon);
  int port = 0;
  (void)absl::SimpleAtoi(config.listen_address.substr(colon + 1), &port);
  options.port = static_cast<uint16_t>(port);  // validated by LoadConfig
  options.threads = std::max(1, absl::GetFlag(FLAGS_threads));
  options.max_connections_per_peer =
      std::max(0, absl::GetFlag(FLAGS_max_connections_per_peer));
  options.max_body_bytes = config.max_body_bytes;
  options.tls = tls->get();
  options.server_name = "vllm-profiler-webhook";

  // Block the stop signals before any thread starts, then wait for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto server = http::HttpServer::Start(
      options,
      [&handler](const http::Request& r) { return handler.Handle(r); });
  if (!server.ok()) {
    VP_LOG(ERROR) << "listen: " << server.status().message();
    return 1;
  }
  VP_LOG(INFO) << "webhook: listening https=" << (*server)->address()
               << " targets="
               << absl::StrJoin(config.injection.target_namespaces, ",")
               << " labels="
               << absl::StrJoin(config.injection.target_label_keys, ",") << "="
               << config.injection.target_label_value << " sidecar="
               << (config.injection.native_sidecar ? "native" : "container");
  if (!config.port_file.empty()) {
    absl::Status s = WritePortFile(config.port_file, (*server)->port());
    if (!s.ok()) {
      VP_LOG(ERROR) << "cannot write --port_file: " << s.message();
      return 1;
    }
  }
  int sig = 0;
  sigwait(&stop, &sig);
  VP_LOG(INFO) << "webhook: signal " << sig << ", shutting down";
  (*server)->Shutdown();
  return 0;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "vllm-profiler admission webhook.\n\n"
      "  webhook [serve] [flags]\n"
      "  webhook gen-certs --out_dir=DIR [--service --service_namespace "
      "--extra_sans --reuse_ca]\n"
      "  webhook review FILE...\n\n"
      "Settings (flag / env fallback / default):\n",
      DescribeSettings()));
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string command = args.size() > 1 ? args[1] : "serve";
  SetLogPrefix("webhook");
  if (command == "gen-certs") return GenCerts();
  absl::StatusOr<Config> config = LoadConfigFromFlagsAndEnv();
  if (!config.ok()) {
    std::fprintf(stderr, "webhook: bad configuration: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(config->log_level, &level);
  SetMinLogLevel(level);
  if (command == "review") return Review(*config, args);
  if (command == "serve") return Serve(*config);
  std::fprintf(stderr,
               "webhook: unknown command \"%s\" (serve, gen-certs, "
               "review)\n",
               command.c_str());
  return 2;
}

}  // namespace
}  // namespace vllm_profiler::webhook

int main(int argc, char** argv) {
  return vllm_profiler::webhook::Main(argc, argv);
}
