// Running the nnmark tool (and the examples) from a test: exit code, stdout and stderr.
#pragma once

#include "../support/files.hpp"

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/model/layer_factory.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <sys/wait.h>

namespace nnmark::testing {

struct run_result {
    int exit_code = -1;
    std::string out, err;
    // stderr without its trailing newline must be one line.
    bool one_line_error() const {
        const std::string trimmed = err.substr(0, err.find_last_not_of('\n') + 1);
        return !trimmed.empty() && trimmed.find('\n') == std::string::npos;
    }
};

// What is wrong with `path` as a figure: "" when it is an SVG document (an XML
// declaration, the svg root, its end) that shows each of `texts` as a <text>, else the
// first thing missing.
inline std::string svg_figure_problem(const std::filesystem::path& path, const std::vector<std::string>& texts) {
    const std::string svg = slurp(path);
    if (!svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\""))
        return "no SVG header";
    if (!svg.ends_with("</svg>\n")) return "no </svg> at the end";
    for (const std::string& text : texts)
        if (svg.find(">" + text + "</text>") == std::string::npos) return "no text '" + text + "'";
    return "";
}

inline run_result run_program(const std::string& program, const std::string& args, const temp_dir& dir) {
    const auto out = dir / "stdout.txt", err = dir / "stderr.txt";
    const std::string command = program + " " + args + " >" + out.string() + " 2>" + err.string() + " </dev/null";
    const int status = std::system(command.c_str());
    run_result r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

inline run_result nnmark_tool(const std::string& args, const temp_dir& dir) {
    return run_program(NNMARK_TOOL_PATH, args + " --threads 2", dir);
}

// `net`'s architecture as a file for --arch: the tool's tests train small networks, since
// the paper's are slow under the sanitizers and these tests check the commands, not accuracy.
inline std::string write_architecture(const sequential<float>& net, const temp_dir& dir, const std::string& name) {
    const auto path = dir.path / name;
    write_file_atomically(path, architecture_json(net));
    return path.string();
}

}  // namespace nnmark::testing
