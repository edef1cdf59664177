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

// Options every command accepts; pod selection (fleet mode, see fleet.h) is
// global too.
ArgSpec GlobalSpec() {
  ArgSpec global;
  global.value_options = {"addr", "context",  "n",      "l",
                          "pod",  "max-pods", "kubectl"};
  global.bool_options = {"help", "h"};
  return global;
}

// Whether `name` is among the global options or the command's (`command`
// is null before the command word).
bool Accepts(const std::set<std::string>& global,
             const std::set<std::string>* command, const std::string& name) {
  return global.count(name) || (command != nullptr && command->count(name));
}

// Parses the option at args[*i] (`--name`, `--name=value`, `--name value`:
// then *i moves past the value) into `out`.
absl::Status ParseOption(const std::vector<std::string>& args, size_t* i,
                         const ArgSpec& global, const ArgSpec* spec,
                         ParsedArgs* out) {
  const std::string& arg = args[*i];
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
  if (Accepts(global.value_options, spec ? &spec->value_options : nullptr,
              name)) {
    if (!has_value) {
      if (*i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("option ", arg, " needs a value"));
      }
      value = args[++*i];
    }
    // --pod may repeat: the values add up to a comma list.
    if (name == "pod" && out->values.count(name)) {
      value = out->values[name] + "," + value;
    }
    out->values[name] = value;
    return absl::OkStatus();
  }
  if (Accepts(global.bool_options, spec ? &spec->bool_options : nullptr,
              name)) {
    if (has_value) {
      return absl::InvalidArgumentError(
          absl::StrCat("option --", name, " takes no value"));
    }
    out->flags.insert(name == "h" ? "help" : name);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      out->command.empty() ? absl::StrCat("unknown option ", arg)
                           : absl::StrCat("unknown option ", arg,
                                          " for 'vpctl ", out->command, "'"));
}

absl::StatusOr<const ArgSpec*> FindCommand(
    const std::string& arg, const std::map<std::string, ArgSpec>& specs) {
  auto it = specs.find(arg);
  if (it != specs.end()) return &it->second;
  std::vector<std::string> names;
  for (const auto& [n, s] : specs) names.push_back(n);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command '", arg,
                   "' (commands: ", absl::StrJoin(names, ", "), ")"));
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
  const ArgSpec* spec = nullptr;  // The command's, once it is known.
  const ArgSpec global = GlobalSpec();
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
      absl::Status s = ParseOption(args, &i, global, spec, &out);
      if (!s.ok()) return s;
    } else if (spec == nullptr) {
      absl::StatusOr<const ArgSpec*> command = FindCommand(arg, specs);
      if (!command.ok()) return command.status();
      out.command = arg;
      spec = *command;
    } else {
      out.positional.push_back(arg);
    }
  }
  return out;
}

}  // namespace vllm_profiler::collector::vpctl
