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
std::vector<reference_model> reference_answers_from_files(const watermark_key& key,
                                                          const std::vector<std::string>& model_paths);
key_calibration calibrate_from_files(const watermark_key& key, const std::vector<std::string>& model_paths,
                                     double confidence = 0.99);

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
