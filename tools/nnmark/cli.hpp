// What every nnmark subcommand shares: registration, dataset options, JSON output
// and the mapping of errors to exit codes (0 success, 1 "not detected", 2 bad input).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace nnmark {
struct verification_result;
struct watermark_key;
struct key_calibration;
struct reference_model;
}

namespace nnmark::cli {

// Exit codes of the tool, the same for every command.
enum exit_code : int { success = 0, not_detected = 1, bad_input = 2, internal_failure = 3 };

// A registered subcommand: its CLI11 node and what to run when it was chosen.
struct command {
    CLI::App* app;
    std::function<int()> run;
};

// The command line the tool was started with (argv), for commands that write commands
// to run later (reproduce --emit-jobs); main records it before parsing.
std::vector<std::string>& invocation();

// Print `value` as one JSON document on stdout.
void print_json(const nlohmann::json& value);

// --dataset / --data, shared by every command that reads a dataset.
struct dataset_options {
    std::string name = "mnist";
    std::string dir;  // empty: datasets/<name>/
    // --dataset takes one of `names` (default: every dataset nnmark reads).
    void add_to(CLI::App& app, bool required = true,
                const std::vector<std::string>& names = {"mnist", "fashion-mnist", "cifar10"});
    std::filesystem::path resolved_dir() const;
};

// The fields `nnmark verify --json` prints (queries, matches, trigger_accuracy,
// null_rate, null_source, p_value, log10_p_value, alpha, verdict, commitment); verify.cpp.
nlohmann::json verification_json(const verification_result& r, const std::string& commitment);
// Warns on stderr when the result's null rate is an assumption (an uncalibrated key).
void warn_if_uncalibrated(const verification_result& r);

// How each reference model in `model_paths` answered the key's triggers, named by file
// name and SHA-256, and the calibration fitted to them (at `confidence`); calibrate.cpp.
// `arch`: the network of weights-only files (empty: each file's own).
std::vector<reference_model> reference_answers_from_files(const watermark_key& key,
                                                          const std::vector<std::string>& model_paths,
                                                          const std::string& arch = "");
key_calibration calibrate_from_files(const watermark_key& key, const std::vector<std::string>& model_paths,
                                     double confidence = 0.99);

// Checks the files `command` (the chosen subcommand, parsed) names before it runs;
// argument_error naming the flag otherwise (cli_checks.cpp): inputs (--model, --models,
// --key, --arch, the dataset directories' files) that exist must be regular files;
// outputs (--out, --key-out, --png, <out>.checkpoint) must be regular files or new paths
// in a directory where a file can be created, none may be an input, and no two the same.
void check_file_flags(const CLI::App& command);
// Adds to every numeric flag of `app` and its subcommands a check that the value is a
// finite number of the flag's type ("-1" is no unsigned value, "nan" no real one).
void harden_numeric_options(CLI::App& app);
// The message of a parse error of `command` (the deepest command parsed), in the words
// of that check when it is about a numeric flag's value.
std::string explain_parse_error(const CLI::App& command, const CLI::ParseError& e);
// `text` on one line (line breaks become spaces) of at most `limit` characters, cut
// with " ..." at the end: the form of every error message of the tool.
std::string one_line(const std::string& text, std::size_t limit = 300);

// A flag's check: a number greater than 0, in a message of one short line (CLI11's own
// PositiveNumber prints the largest double in full).
extern const CLI::Validator positive_number;

// The commands, one file each.
command add_train_command(CLI::App& parent);
command add_eval_command(CLI::App& parent);
command add_embed_command(CLI::App& parent);
command add_verify_command(CLI::App& parent);
command add_calibrate_command(CLI::App& parent);
command add_key_command(CLI::App& parent);
command add_attack_command(CLI::App& parent);
command add_serve_command(CLI::App& parent);
command add_reproduce_command(CLI::App& parent);
command add_study_command(CLI::App& parent);

}  // namespace nnmark::cli
