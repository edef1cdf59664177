// Command-line parsing for vpctl: `vpctl [--addr A] COMMAND [options]
// [positional...] [-- trailing...]`.
//
// Options are `--name value`, `--name=value`, `-o value` or a bare boolean
// `--name`. Dashes and underscores in names are equivalent
// (`--start-after` == `--start_after`). Everything after `--` is kept
// verbatim (vpctl run's COMMAND). abseil flags are not used because vpctl's
// option names contain dashes and differ per sub-command.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_ARGS_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_ARGS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vllm_profiler::collector::vpctl {

// What one sub-command accepts. Names without leading dashes, with '-'.
struct ArgSpec {
  std::set<std::string> value_options;  // Take a value: "steps", "o".
  std::set<std::string> bool_options;   // Flags: "wait", "no-gpu".
  bool allow_trailing = false;          // Accept `-- COMMAND...`.
};

struct ParsedArgs {
  std::string command;
  std::map<std::string, std::string> values;
  std::set<std::string> flags;
  std::vector<std::string> positional;
  std::vector<std::string> trailing;

  bool Has(const std::string& name) const {
    return values.count(name) > 0 || flags.count(name) > 0;
  }
  std::string Get(const std::string& name, const std::string& def = "") const;
  // INVALID_ARGUMENT "--NAME: expected a non-negative integer, got 'X'".
  absl::StatusOr<uint64_t> GetUint(const std::string& name, uint64_t def) const;
};

// `specs` maps each command name to what it accepts. `--addr`, `--help`,
// `-h` and the pod selection (`--context`, `-n`/`--namespace`,
// `-l`/`--selector`, `--pod` (repeatable: a comma list), `--max-pods`,
// `--kubectl`) are accepted by every command. Errors name the bad argument.
absl::StatusOr<ParsedArgs> ParseArgs(
    const std::vector<std::string>& args,
    const std::map<std::string, ArgSpec>& specs);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_ARGS_H_
