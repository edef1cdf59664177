#include "webhook/config.h"

#include <map>
#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace vllm_profiler::webhook {
namespace {

using Map = std::map<std::string, std::string>;

absl::StatusOr<Config> Load(const Map& flags, const Map& env) {
  auto lookup = [](const Map& m) {
    return [&m](absl::string_view k) -> std::optional<std::string> {
      auto it = m.find(std::string(k));
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  };
  return LoadConfig(lookup(flags), lookup(env));
}

TEST(ConfigTest, DefaultsKeepTheSeedsValues) {
  absl::StatusOr<Config> c = Load({}, {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->injection.target_namespaces,
            std::vector<std::string>{"downstream-llm-d"});
  EXPECT_EQ(c->injection.target_label_keys,
            (std::vector<std::string>{"llm-d.ai/inference-serving",
                                      "llm-d.ai/inferenceServing"}));
  EXPECT_FALSE(c->injection.run_as_user.has_value());
  EXPECT_EQ(c->injection.target_label_value, "true");
  EXPECT_EQ(c->injection.inject_env_name, "PYTHONPATH");
  EXPECT_EQ(c->injection.inject_env_value, "/home/vllm/profiler");
  EXPECT_EQ(c->log_level, "DEBUG");
  EXPECT_EQ(c->injection.own_namespace, "vllm-profiler");
  EXPECT_TRUE(c->injection.native_sidecar);
  EXPECT_EQ(c->listen_address, "0.0.0.0:8443");
  EXPECT_EQ(c->max_body_bytes, 3 * 1024 * 1024);
  // The header's defaults and the table's agree.
  InjectionConfig d;
  EXPECT_EQ(c->injection.collector_max_trace_bytes,
            d.collector_max_trace_bytes);
  EXPECT_EQ(c->injection.probe_init_command, d.probe_init_command);
  EXPECT_EQ(c->injection.collector_readiness_command,
            d.collector_readiness_command);
  EXPECT_EQ(c->injection.collector_resources.memory_limit,
            d.collector_resources.memory_limit);
}

TEST(ConfigTest, FlagBeatsEnvBeatsDefault) {
  absl::StatusOr<Config> c =
      Load({{"target_label_value", "yes"}}, {{"TARGET_LABEL_VALUE", "no"},
                                             {"TARGET_NAMESPACE", "a, b,c"},
                                             {"POD_NAMESPACE", "profiler"},
                                             {"SIDECAR_MODE", "container"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->injection.target_label_value, "yes");
  EXPECT_EQ(c->injection.target_namespaces,
            (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(c->injection.own_namespace, "profiler");
  EXPECT_FALSE(c->injection.native_sidecar);
}

TEST(ConfigTest, LabelKeysAndRunAsUser) {
  absl::StatusOr<Config> c = Load({}, {{"TARGET_LABEL_KEY", " app/serve "},
                                       {"INJECT_RUN_AS_USER", "1001"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->injection.target_label_keys,
            std::vector<std::string>{"app/serve"});
  EXPECT_EQ(c->injection.run_as_user, 1001);
}

TEST(ConfigTest, BadValuesNameFlagAndEnv) {
  struct Case {
    Map env;
    const char* message;
  } cases[] = {
      {{{"SIDECAR_MODE", "sometimes"}},
       "--sidecar_mode (env SIDECAR_MODE): \"sometimes\" is not one of "
       "native, container"},
      {{{"TARGET_NAMESPACE", "Bad_NS"}},
       "--target_namespace (env TARGET_NAMESPACE): \"Bad_NS\" contains "
       "\"Bad_NS\", which is not a namespace name (* alone selects all "
       "namespaces)"},
      {{{"TARGET_NAMESPACE", " , "}},
       "--target_namespace (env TARGET_NAMESPACE): \" , \" names no "
       "namespace"},
      {{{"TARGET_LABEL_KEY", "llm-d.ai/inference-serving, a/b/c"}},
       "--target_label_key (env TARGET_LABEL_KEY): \"llm-d.ai/"
       "inference-serving, a/b/c\" contains \"a/b/c\", which is not a valid "
       "label key"},
      {{{"TARGET_LABEL_KEY", ","}},
       "--target_label_key (env TARGET_LABEL_KEY): \",\" names no label key"},
      {{{"INJECT_ENV_VALUE", "relative/path"}},
       "--inject_env_value (env INJECT_ENV_VALUE): \"relative/path\" must be "
       "an absolute folder path without ':' or a trailing '/'"},
      {{{"LOG_LEVEL", "loud"}},
       "--log_level (env LOG_LEVEL): \"loud\" is not one of DEBUG, INFO, "
       "WARNING, ERROR"},
      {{{"COLLECTOR_MEMORY_LIMIT", "lots"}},
       "--collector_memory_limit (env COLLECTOR_MEMORY_LIMIT): \"lots\" is "
       "not a Kubernetes quantity (e.g. 100m, 1, 64Mi, 2Gi)"},
      {{{"MAX_BODY_BYTES", "12"}},
       "--max_body_bytes (env MAX_BODY_BYTES): \"12\" is not an integer in "
       "[1024, 67108864]"},
      {{{"LISTEN_ADDRESS", "8443"}},
       "--listen_address (env LISTEN_ADDRESS): \"8443\" is not host:port "
       "(port 0-65535)"},
      {{{"IMAGE_PULL_POLICY", "Sometimes"}},
       "--image_pull_policy (env IMAGE_PULL_POLICY): \"Sometimes\" is not "
       "one of Always, IfNotPresent, Never"},
      {{{"INJECT_RUN_AS_USER", "0"}},
       "--run_as_user (env INJECT_RUN_AS_USER): \"0\" is not an integer in "
       "[1, 2147483647]"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Config> got = Load({}, c.env);
    ASSERT_FALSE(got.ok()) << c.message;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(got.status().message(), c.message);
  }
}

TEST(ConfigTest, Quantities) {
  for (const char* ok : {"100m", "1", "1.5", "64Mi", "2Gi", "1e3", "0.5Gi"}) {
    EXPECT_TRUE(IsValidQuantity(ok)) << ok;
  }
  for (const char* bad : {"", "Mi", "1.2.3", "1MB", "-1", "1e", "1 Gi"}) {
    EXPECT_FALSE(IsValidQuantity(bad)) << bad;
  }
}

TEST(ConfigTest, QuantityValues) {
  auto value = [](const char* q) {
    return static_cast<double>(ParseQuantity(q).value_or(-1));
  };
  EXPECT_DOUBLE_EQ(value("100m"), 0.1);
  EXPECT_DOUBLE_EQ(value("1000m"), 1);
  EXPECT_DOUBLE_EQ(value("64Mi"), 67108864);
  EXPECT_DOUBLE_EQ(value("1e3"), 1000);
  EXPECT_DOUBLE_EQ(value("1E"), 1e18);
  EXPECT_EQ(ParseQuantity("1Gb"), std::nullopt);
}

TEST(ConfigTest, StarAloneSelectsAll) {
  EXPECT_TRUE(Load({}, {{"TARGET_NAMESPACE", "*"}}).ok());
  EXPECT_FALSE(Load({}, {{"TARGET_NAMESPACE", "*,a"}}).ok());
}

}  // namespace
}  // namespace vllm_profiler::webhook
