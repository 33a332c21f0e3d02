// What every command's flags go through before the command runs, in one place so that
// no command can forget it: the files it reads and writes (file_flag_roles), numeric
// values (harden_numeric_options), and the shape of every error message (one_line).
#include "cli.hpp"

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/file_checks.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace nnmark::cli {

namespace file_flags {

namespace fs = std::filesystem;

// Flags that name files a command reads, and flags that name files it writes. A flag
// means the same in every command that has it; the --out of reproduce and study is a
// directory of outputs (their own files), and calibrate's --key is updated in place by design.
const std::vector<std::string> input_flags = {"--model", "--models", "--key", "--arch"};
const std::vector<std::string> output_flags = {"--out", "--key-out", "--extraction-key-out", "--png", "--ledger", "--emit-jobs",
                                              "--predictions"};
const std::vector<std::string> data_directory_flags = {"--data", "--unrelated-data", "--other-data"};

struct named_path {
    std::string flag;  // "--out", or "--out's checkpoint"
    fs::path path;
};

bool is(const std::vector<std::string>& flags, const std::string& name) {
    return std::find(flags.begin(), flags.end(), name) != flags.end();
}

// The files of a data directory (and of its subdirectories, as CIFAR-10's batches are):
// a command reads some of them, and none may be overwritten.
void add_data_files(const std::string& flag, const fs::path& dir, std::vector<named_path>& inputs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return;  // the loader names a missing directory
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
    for (int seen = 0; !ec && it != end && seen < 10000; it.increment(ec), ++seen) {
        if (it.depth() >= 1) it.disable_recursion_pending();  // one level: cifar-10-batches-bin/
        if (it->is_regular_file(ec)) inputs.push_back({flag, it->path()});
    }
}

// A new file can be made in `path`'s directory: a temporary file is created and removed
// (which also clears temporary files that killed saves left there).
void expect_writable(const named_path& out) {
    std::string temp;
    const int fd = detail::create_temp_for(out.path, temp);
    ::close(fd);
    ::unlink(temp.c_str());
}

void check(const CLI::App& command) {
    std::vector<named_path> inputs, outputs;
    // reproduce and study write a directory of outputs to --out; their other outputs are files.
    const bool out_is_directory = command.get_name() == "reproduce" || command.get_name() == "study";
    for (const CLI::Option* option : command.get_options()) {
        const std::string flag = option->get_name();
        for (const std::string& value : option->results()) {
            if (is(input_flags, flag)) inputs.push_back({flag, value});
            else if (is(output_flags, flag) && !(out_is_directory && flag == "--out")) outputs.push_back({flag, value});
            else if (is(data_directory_flags, flag)) add_data_files(flag, value, inputs);
        }
    }
    // The default data directory, datasets/<name>/, when --data is not given.
    if (const CLI::Option* dataset = command.get_option_no_throw("--dataset")) {
        const CLI::Option* data = command.get_option_no_throw("--data");
        if (!dataset->results().empty() && data && data->results().empty())
            add_data_files("--dataset", fs::path("datasets") / dataset->results().front(), inputs);
    }
    // train and embed write <out>.checkpoint after every epoch.
    if (command.get_option_no_throw("--resume"))
        for (std::size_t i = 0, n = outputs.size(); i < n; ++i)
            if (outputs[i].flag == "--out")
                outputs.push_back({"--out's checkpoint", outputs[i].path.string() + ".checkpoint"});

    // verify --url appends to <key>.ledger when --ledger names no other file.
    const CLI::Option* ledger = command.get_option_no_throw("--ledger");
    const CLI::Option* url = command.get_option_no_throw("--url");
    const CLI::Option* key = command.get_option_no_throw("--key");
    if (ledger && ledger->results().empty() && url && !url->results().empty() && key && !key->results().empty())
        outputs.push_back({"--key's ledger", key->results().front() + ".ledger"});

    const auto fail = [](const named_path& p, const std::string& what) {
        throw argument_error(p.flag + " '" + p.path.string() + "': " + what);
    };
    for (const named_path& in : inputs)
        if (const auto st = file_status(in.path); st && !S_ISREG(st->st_mode))
            fail(in, "expected a regular file to read, found " + file_type_name(st->st_mode));
    for (std::size_t i = 0; i < outputs.size(); ++i) {
        const named_path& out = outputs[i];
        if (const auto st = file_status(out.path); st && !S_ISREG(st->st_mode))
            fail(out, "expected a regular file or a new path to write, found " + file_type_name(st->st_mode) +
                          " (nnmark replaces only regular files)");
        for (const named_path& in : inputs)
            if (same_file(out.path, in.path))
                fail(out, "is also read as " + in.flag + " '" + in.path.string() +
                              "'; nnmark does not write over its inputs, nothing was written");
        for (std::size_t j = 0; j < i; ++j)
            if (same_file(out.path, outputs[j].path))
                fail(out, "is also " + outputs[j].flag + "; two outputs cannot share one file, nothing was written");
    }
    for (const named_path& out : outputs) {
        try {
            expect_writable(out);
        } catch (const io_error& e) {
            fail(out, std::string("cannot be written, nothing was: ") + e.what());
        }
    }
}

}  // namespace file_flags

void check_file_flags(const CLI::App& command) { file_flags::check(command); }

namespace numeric_flags {

// The value of a numeric flag as CLI11 would read it, refused when it is not a finite
// number in the type's range: CLI11 itself reads "-1" into an unsigned flag as 2^64 - 1
// and lets "nan" through range checks (NaN compares false with both bounds).
std::string check(const std::string& type, const std::string& text) {
    const char* begin = text.c_str();
    char* end = nullptr;
    errno = 0;
    const std::string found = "found '" + text.substr(0, 40) + (text.size() > 40 ? "...'" : "'");
    if (type == "FLOAT") {
        const double v = std::strtod(begin, &end);
        if (end == begin || *end != '\0' || errno == ERANGE || !std::isfinite(v))
            return "expected a finite number, " + found;
    } else if (type == "UINT") {
        const auto first = text.find_first_not_of(" \t");
        (void)std::strtoull(begin, &end, 0);
        if (first == std::string::npos || text[first] == '-' || end == begin || *end != '\0' || errno == ERANGE)
            return "expected a whole number from 0 to 18446744073709551615, " + found;
    } else {
        (void)std::strtoll(begin, &end, 0);
        if (end == begin || *end != '\0' || errno == ERANGE) return "expected a whole number, " + found;
    }
    return {};
}

// "FLOAT", "INT" or "UINT" for a numeric option (CLI11 appends its validators'
// descriptions after a colon: "FLOAT:FLOAT in [0 - 100]"), else empty.
std::string numeric_type(const CLI::Option& option) {
    const std::string full = option.get_type_name();
    const std::string type = full.substr(0, full.find(':'));
    return type == "FLOAT" || type == "INT" || type == "UINT" ? type : std::string();
}

void harden(CLI::App& app) {
    for (CLI::Option* option : app.get_options()) {
        const std::string type = numeric_type(*option);
        if (type.empty()) continue;
        option->check(CLI::Validator([type](std::string& value) { return check(type, value); }, ""));
    }
    for (CLI::App* sub : app.get_subcommands({})) harden(*sub);
}

// CLI11 runs a flag's own range check before the one added here, and says of "1e400"
// that it is not in a range whose bound it prints with 300 digits: for a value that is
// no finite number of the flag's type, this check's words replace CLI11's.
std::string explain(const CLI::App& command, const CLI::ParseError& e) {
    const std::string message = e.what();
    const std::size_t colon = message.find(": ");
    if (!message.starts_with("--") || colon == std::string::npos) return message;
    const std::string flag = message.substr(0, colon);
    for (const CLI::App* app = &command; app; app = app->get_parent()) {
        const CLI::Option* option = app->get_option_no_throw(flag);
        if (!option) continue;
        const std::string type = numeric_type(*option);
        if (!type.empty())
            for (const std::string& value : option->results())
                if (const std::string why = check(type, value); !why.empty()) return flag + ": " + why;
        break;
    }
    return message;
}

}  // namespace numeric_flags

const CLI::Validator positive_number(
    [](std::string& value) {
        const double v = std::strtod(value.c_str(), nullptr);
        return v > 0 ? std::string() : "expected a number greater than 0, found '" + value.substr(0, 40) + "'";
    },
    "POSITIVE");

void harden_numeric_options(CLI::App& app) { numeric_flags::harden(app); }
std::string explain_parse_error(const CLI::App& command, const CLI::ParseError& e) {
    return numeric_flags::explain(command, e);
}

std::string one_line(const std::string& text, std::size_t limit) {
    std::string line;
    for (const char c : text) {
        const bool space = c == '\n' || c == '\r' || c == '\t';
        if (space && (line.empty() || line.back() == ' ')) continue;
        line.push_back(space ? ' ' : c);
    }
    if (line.size() > limit) line = line.substr(0, limit - 4) + " ...";
    return line;
}

}  // namespace nnmark::cli
