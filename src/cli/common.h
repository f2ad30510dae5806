// Pieces shared by the subcommands: where the default model is, and parsing of small option formats.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe::cli {

// The model to use: `given` if not empty, else $MOE_MODEL, else the bundled default model.
// Throws UsageError when none exists.
std::string resolve_model_path(const std::string& given);

// "1,2,3" -> ids; throws UsageError naming the flag on malformed input.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag);

// Thread count: 0 means all hardware threads.
int resolve_threads(int requested);

}  // namespace moe::cli
