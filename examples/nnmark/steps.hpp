// Long commands made of cached steps (nnmark reproduce, nnmark study): each step stores
// its result as <dir>/steps/<step>.json when it finishes, so a second run with the same
// settings reuses it, and a directory refuses a run with other settings.
#pragma once

#include "cli.hpp"

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"

#include <algorithm>
#include <chrono>
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

// Runs the steps in order, numbering them on the terminal, and stores each result.
class step_runner {
public:
    step_runner(std::string command, fs::path dir, int total, bool quiet)
        : command_(std::move(command)), dir_(std::move(dir)), total_(total), quiet_(quiet) {
        fs::create_directories(dir_ / "steps");
    }

    // The result of step `name`: the stored one when an earlier run finished it and every
    // file in `outputs` is still there, otherwise what `work` returns (then stored).
    nlohmann::json run(const std::string& name, const std::string& what, const std::vector<fs::path>& outputs,
                       const std::function<nlohmann::json()>& work) {
        ++done_;
        const fs::path stored = dir_ / "steps" / (name + ".json");
        const bool reusable = fs::exists(stored) && std::ranges::all_of(outputs, [](const fs::path& f) { return fs::exists(f); });
        if (reusable) {
            say(what + ": done by an earlier run, reusing " + stored.string());
            return read_json(stored);
        }
        say(what);
        const auto start = std::chrono::steady_clock::now();
        nlohmann::json result = work();
        result["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        write_json(stored, result);
        return result;
    }

    // A step that is cheap enough to redo every time (it stores nothing).
    void announce(const std::string& what) {
        ++done_;
        say(what);
    }

private:
    void say(const std::string& text) const {
        if (!quiet_) std::fprintf(stderr, "[%s %d/%d] %s\n", command_.c_str(), done_, total_, text.c_str());
    }

    std::string command_;
    fs::path dir_;
    int total_, done_ = 0;
    bool quiet_;
};

}  // namespace nnmark::cli::steps
