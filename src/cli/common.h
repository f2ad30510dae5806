// Pieces shared by the subcommands: where the default model is, and parsing of small option formats.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe::cli {

// The model to use: `given` if not empty, else $MOE_MODEL, else the bundled default model.
// Throws UsageError when none exists.
std::string resolve_model_path(const std::string& given);

// "1,2,3", "1 2 3" or "1, 2, 3" -> ids; throws UsageError naming the flag on malformed input.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag);

// The bytes of a text file, or of standard input when path is "-"; throws Error naming the file.
std::string read_text_input(const std::string& path, const std::string& what);

// The prompt of `-p TEXT` / `-f FILE`: the file's bytes if FILE is given ("-": standard input), standard input
// if TEXT is "-", else TEXT. Both at once is a UsageError.
std::string resolve_prompt(const std::string& prompt, const std::string& file);

// A stats file named as `moe profile --out` was given it: "stats" finds stats.json when "stats" does not exist.
std::string resolve_stats_path(const std::string& given);

}  // namespace moe::cli
