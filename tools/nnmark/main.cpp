// nnmark: train, watermark, verify and attack image classifiers from the command line.
//
// Each subcommand lives in its own file (train.cpp, eval.cpp, ...); this file parses
// the command line and turns every failure into a one-line message and an exit code.
#include "cli.hpp"

#include "nnmark/core/error.hpp"
#include "nnmark/core/parallel.hpp"

#include <cstdio>
#include <exception>
#include <iostream>
#include <vector>

namespace nnmark::cli {

void print_json(const nlohmann::json& value) { std::cout << value.dump(2) << std::endl; }

void dataset_options::add_to(CLI::App& app, bool required, const std::vector<std::string>& names) {
    std::string listed;
    for (const auto& n : names) listed += (listed.empty() ? "" : ", ") + n;
    auto* option = app.add_option("--dataset", name, "Dataset: " + listed)->check(CLI::IsMember(names));
    if (required) option->required();
    app.add_option("--data", dir, "Directory holding the dataset files (default: datasets/<dataset>/)");
}

std::vector<std::string>& invocation() {
    static std::vector<std::string> words;
    return words;
}

std::filesystem::path dataset_options::resolved_dir() const {
    return dir.empty() ? std::filesystem::path("datasets") / name : std::filesystem::path(dir);
}

}  // namespace nnmark::cli

int main(int argc, char** argv) {
    using namespace nnmark::cli;
    CLI::App app{"nnmark: embed and verify black-box watermarks in image classifiers (Zhang et al., ASIACCS 2018)",
                 "nnmark"};
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show help for every command");
    // --threads belongs to every command: given after any of them, it falls through to
    // here and is applied before the command runs, so no command can ignore it.
    int threads = 0;
    app.add_option("--threads", threads, "Worker threads for every command (default: all cores)")
        ->check(CLI::Range(1, 1024));
    app.fallthrough();
    const std::vector<command> commands = {
        add_train_command(app),
        add_eval_command(app),
        add_embed_command(app),
        add_verify_command(app),
        add_calibrate_command(app),
        add_key_command(app),
        add_attack_command(app),
        add_serve_command(app),
        add_reproduce_command(app),
        add_study_command(app),
    };

    harden_numeric_options(app);

    // Every message is one line of at most ~300 characters, whatever produced it.
    const auto report = [](const std::string& prefix, const std::string& message) {
        std::fprintf(stderr, "%s\n", one_line(prefix + message).c_str());
    };
    invocation().assign(argv, argv + argc);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help
    } catch (const CLI::ParseError& e) {
        std::string where = "nnmark";  // the command as typed, e.g. "nnmark attack prune"
        const CLI::App* sub = &app;
        while (!sub->get_subcommands().empty()) {
            sub = sub->get_subcommands().front();
            where += " " + sub->get_name();
        }
        // A word where a command is expected that names none: say so, with the known ones.
        std::vector<std::string> rest = sub->remaining();
        if (rest.empty()) rest = app.remaining(true);  // (CLI11 may hand them up to the top)
        const std::vector<const CLI::App*> known = sub->get_subcommands([](const CLI::App*) { return true; });
        if (!known.empty() && !rest.empty() && !rest.front().starts_with("-")) {
            std::string names;
            for (const CLI::App* k : known) names += (names.empty() ? "" : ", ") + k->get_name();
            report(where + ": ", "unknown command '" + rest.front() + "' (commands: " + names + ")");
            return bad_input;
        }
        report(where + ": ", explain_parse_error(*sub, e) + " (see '" + where + " --help')");
        return bad_input;
    }
    try {
        if (threads > 0) nnmark::set_threads(threads);
        for (const auto& c : commands) {
            if (!c.app->parsed()) continue;
            const CLI::App* chosen = c.app;
            while (!chosen->get_subcommands().empty()) chosen = chosen->get_subcommands().front();
            check_file_flags(*chosen);
            return c.run();
        }
        return bad_input;
    } catch (const nnmark::error& e) {
        report("nnmark: error: ", e.what());
        return bad_input;
    } catch (const std::bad_alloc&) {
        report("nnmark: error: ", "out of memory");
        return internal_failure;
    } catch (const std::exception& e) {
        report("nnmark: internal error: ", e.what());
        return internal_failure;
    }
}
