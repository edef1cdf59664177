#include "collector/vpctl/args.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vllm_profiler::collector::vpctl {
namespace {

std::string Normalize(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  if (name == "output") return "o";
  if (name == "namespace") return "n";
  if (name == "selector") return "l";
  return name;
}

}  // namespace

std::string ParsedArgs::Get(const std::string& name,
                            const std::string& def) const {
  auto it = values.find(name);
  return it == values.end() ? def : it->second;
}

absl::StatusOr<uint64_t> ParsedArgs::GetUint(const std::string& name,
                                             uint64_t def) const {
  auto it = values.find(name);
  if (it == values.end()) return def;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(it->second, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": expected a non-negative integer, got '",
                     it->second, "'"));
  }
  return v;
}

absl::StatusOr<ParsedArgs> ParseArgs(
    const std::vector<std::string>& args,
    const std::map<std::string, ArgSpec>& specs) {
  ParsedArgs out;
  const ArgSpec* spec = nullptr;
  ArgSpec global;
  // Pod selection (fleet mode, see fleet.h) is global too.
  global.value_options = {"addr", "context",  "n",      "l",
                          "pod",  "max-pods", "kubectl"};
  global.bool_options = {"help", "h"};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      if (spec == nullptr || !spec->allow_trailing) {
        return absl::InvalidArgumentError(
            spec == nullptr ? "'--' before a command"
                            : absl::StrCat("'vpctl ", out.command,
                                           "' takes no '--' arguments"));
      }
      out.trailing.assign(args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
      std::string value;
      bool has_value = false;
      size_t eq = body.find('=');
      if (eq != std::string::npos) {
        value = body.substr(eq + 1);
        body = body.substr(0, eq);
        has_value = true;
      }
      const std::string name = Normalize(body);
      auto takes_value = [&](const std::string& n) {
        return global.value_options.count(n) ||
               (spec != nullptr && spec->value_options.count(n));
      };
      auto is_bool = [&](const std::string& n) {
        return global.bool_options.count(n) ||
               (spec != nullptr && spec->bool_options.count(n));
      };
      if (takes_value(name)) {
        if (!has_value) {
          if (i + 1 >= args.size()) {
            return absl::InvalidArgumentError(
                absl::StrCat("option ", arg, " needs a value"));
          }
          value = args[++i];
        }
        // --pod may repeat: the values add up to a comma list.
        if (name == "pod" && out.values.count(name)) {
          value = out.values[name] + "," + value;
        }
        out.values[name] = value;
      } else if (is_bool(name)) {
        if (has_value) {
          return absl::InvalidArgumentError(
              absl::StrCat("option --", name, " takes no value"));
        }
        out.flags.insert(name == "h" ? "help" : name);
      } else {
        return absl::InvalidArgumentError(
            out.command.empty()
                ? absl::StrCat("unknown option ", arg)
                : absl::StrCat("unknown option ", arg, " for 'vpctl ",
                               out.command, "'"));
      }
      continue;
    }
    if (spec == nullptr) {
      auto it = specs.find(arg);
      if (it == specs.end()) {
        std::vector<std::string> names;
        for (const auto& [n, s] : specs) names.push_back(n);
        return absl::InvalidArgumentError(
            absl::StrCat("unknown command '", arg,
                         "' (commands: ", absl::StrJoin(names, ", "), ")"));
      }
      out.command = arg;
      spec = &it->second;
      continue;
    }
    out.positional.push_back(arg);
  }
  return out;
}

}  // namespace vllm_profiler::collector::vpctl
