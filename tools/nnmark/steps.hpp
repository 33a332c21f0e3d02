// Long commands made of cached steps (nnmark reproduce, nnmark study): each step stores
// its result as <dir>/steps/<step>.json when it finishes, so a second run with the same
// settings reuses it, and a directory refuses a run with other settings.
#pragma once

#include "cli.hpp"

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace nnmark::cli::steps {

namespace fs = std::filesystem;

inline nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw format_error("'" + path.string() + "': not a JSON document from an earlier run (" + e.what() +
                           "); delete it to redo that step");
    }
}

inline void write_json(const fs::path& path, const nlohmann::json& value) { write_file_atomically(path, value.dump(2) + "\n"); }

// Refuses a report directory made with other settings: mixing them would give tables
// whose rows come from different experiments.
inline void check_settings(const fs::path& dir, const nlohmann::json& settings) {
    const fs::path file = dir / "settings.json";
    if (!fs::exists(file)) {
        fs::create_directories(dir);
        write_json(file, settings);
        return;
    }
    const nlohmann::json earlier = read_json(file);
    for (const auto& [name, value] : settings.items())
        if (earlier.value(name, nlohmann::json()) != value)
            throw argument_error("report directory '" + dir.string() + "' holds a run with " + name + " = " +
                                 earlier.value(name, nlohmann::json()).dump() + ", this one asks for " + value.dump() +
                                 ": pass another --out, or delete the directory to start over");
}

// A run's directory: its settings checked (check_settings), models/ and figures/ made.
inline void open_run_directory(const fs::path& dir, const nlohmann::json& settings) {
    check_settings(dir, settings);
    fs::create_directories(dir / "models");
    fs::create_directories(dir / "figures");
}

// Which steps a run does: all of them (a plain run); none, only listing those left of the
// next wave (plan: --emit-jobs); or exactly one (--step NAME), for a scheduler to run the
// steps of a wave side by side. Steps not run give an empty result (JSON null), which the
// run only passes along: nothing after a barrier runs before every step ahead of it is
// stored, so no step consumes an empty result.
struct step_selection {
    enum class mode { all, plan, one } how = mode::all;
    std::string only;  // mode::one: the step to run
};

// Thrown when the selection is done: the plan reached a barrier with steps to emit, or
// the one step ran. The run stops there.
struct selection_done {};

// Runs the steps in order, numbering them on the terminal, and stores each result.
class step_runner {
public:
    step_runner(std::string command, fs::path dir, int total, bool quiet, step_selection selection = {})
        : command_(std::move(command)), dir_(std::move(dir)), total_(total), quiet_(quiet),
          selection_(std::move(selection)) {
        fs::create_directories(dir_ / "steps");
    }

    // The result of step `name`: the stored one when an earlier run finished it and every
    // file in `outputs` is still there, otherwise what `work` returns (then stored) if the
    // selection runs this step, else null.
    nlohmann::json run(const std::string& name, const std::string& what, const std::vector<fs::path>& outputs,
                       const std::function<nlohmann::json()>& work) {
        ++done_;
        const fs::path stored = dir_ / "steps" / (name + ".json");
        const bool reusable = fs::exists(stored) && std::ranges::all_of(outputs, [](const fs::path& f) { return fs::exists(f); });
        const bool chosen = selection_.how == step_selection::mode::all || selection_.only == name;
        if (reusable) {
            say(what + ": done by an earlier run, reusing " + stored.string());
            if (chosen && selection_.how == step_selection::mode::one) throw selection_done{};
            return read_json(stored);
        }
        if (!chosen) {
            left_.push_back(name);
            return nullptr;
        }
        say(what);
        const auto start = std::chrono::steady_clock::now();
        const double started_at = unix_seconds_now();
        nlohmann::json result = work();
        result["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        result["started_at"] = started_at;
        result["finished_at"] = unix_seconds_now();
        write_json(stored, result);
        if (selection_.how == step_selection::mode::one) throw selection_done{};
        return result;
    }

    // What follows needs every step before: a plan with steps left ends here (they are
    // the next wave), and a single step after this point refuses to run without them.
    void barrier() {
        if (left_.empty()) return;
        if (selection_.how == step_selection::mode::plan) throw selection_done{};
        if (selection_.how == step_selection::mode::one)
            throw argument_error(command_ + " --step " + selection_.only + ": needs step " + left_.front() +
                                 " (and " + std::to_string(left_.size() - 1) +
                                 " more) done first: run the earlier wave of --emit-jobs");
    }

    // The steps a plan found left to do (the next wave), or that a selection skipped.
    const std::vector<std::string>& steps_left() const { return left_; }

    // A step that is cheap enough to redo every time (it stores nothing).
    void announce(const std::string& what) {
        ++done_;
        say(what);
    }

private:
    // Wall-clock time (Unix seconds): steps run in separate processes, even on separate
    // machines of a scheduler, so only the clock they share orders them.
    static double unix_seconds_now() {
        return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    }

    void say(const std::string& text) const {
        if (!quiet_) std::fprintf(stderr, "[%s %d/%d] %s\n", command_.c_str(), done_, total_, text.c_str());
    }

    std::string command_;
    fs::path dir_;
    int total_, done_ = 0;
    bool quiet_;
    step_selection selection_;
    std::vector<std::string> left_;
};

// How long the stored steps of a run took: their own times added up (the work, as one
// core-set would do it step after step), and the wall time from the first step's start to
// the last one's end (the time to a verdict, shorter than the sum when a scheduler ran
// steps side by side, longer when runs were interrupted). Only stored steps count, so a
// run that reuses every step reports the same times.
struct steps_time {
    double step_seconds = 0;
    double wall_seconds = 0;
};

inline steps_time time_of_steps(const fs::path& dir) {
    steps_time t;
    double first = INFINITY, last = -INFINITY;
    for (const auto& entry : fs::directory_iterator(dir / "steps")) {
        const nlohmann::json step = read_json(entry.path());
        t.step_seconds += step.value("seconds", 0.0);
        if (step.contains("started_at") && step.contains("finished_at")) {
            first = std::min(first, step["started_at"].get<double>());
            last = std::max(last, step["finished_at"].get<double>());
        }
    }
    if (last >= first) t.wall_seconds = last - first;
    return t;
}

// `word` quoted for a POSIX shell: in single quotes, each ' written as '\''.
inline std::string shell_quoted(const std::string& word) {
    std::string out = "'";
    for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// The command lines of `steps`, one per line: this run's own command (`invocation`,
// without `--emit-jobs FILE`) with --step NAME, from this directory and this executable,
// for GNU parallel (`parallel -j 2 -a FILE`); and FILE.sbatch, a Slurm job array running
// line $SLURM_ARRAY_TASK_ID of FILE.
inline void write_jobs(const fs::path& file, const std::vector<std::string>& steps, std::vector<std::string> invocation) {
    invocation.erase(invocation.begin());  // the executable, named again below as /proc/self/exe resolves it
    std::string prefix = "cd " + shell_quoted(fs::current_path().string()) + " && " +
                         shell_quoted(fs::read_symlink("/proc/self/exe").string());
    for (std::size_t i = 0; i < invocation.size(); ++i) {
        const std::string& word = invocation[i];
        if (word == "--emit-jobs") {
            ++i;  // and its value
            continue;
        }
        if (!word.starts_with("--emit-jobs=")) prefix += " " + shell_quoted(word);
    }
    std::string lines;
    for (const std::string& step : steps) lines += prefix + " --step " + shell_quoted(step) + "\n";
    write_file_atomically(file, lines);
    const fs::path script = file.string() + ".sbatch";
    write_file_atomically(script, "#!/bin/bash\n#SBATCH --job-name=nnmark-steps\n#SBATCH --array=1-" +
                                      std::to_string(std::max<std::size_t>(steps.size(), 1)) +
                                      "\nexec bash -c \"$(sed -n \"${SLURM_ARRAY_TASK_ID}p\" " +
                                      shell_quoted(fs::absolute(file).string()) + ")\"\n");
}

}  // namespace nnmark::cli::steps
