#include "nnmark/core/version.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <regex>
#include <string>

using namespace nnmark::testing;

namespace {

// The first capture of `pattern` in `file`, or "" when it does not match.
std::string captured(const std::filesystem::path& file, const std::string& pattern) {
    std::smatch m;
    const std::string text = slurp(file);
    return std::regex_search(text, m, std::regex(pattern)) ? m[1].str() : "";
}

}  // namespace

TEST_CASE("version: the string is spelled from the numbers, and both build systems declare it") {
    const std::string spelled = std::to_string(NNMARK_VERSION_MAJOR) + "." + std::to_string(NNMARK_VERSION_MINOR) + "." +
                                std::to_string(NNMARK_VERSION_PATCH);
    CHECK(std::string(NNMARK_VERSION_STRING) == spelled);
    CHECK(captured(source_dir() / "CMakeLists.txt", R"(project\(nnmark VERSION ([0-9.]+))") == spelled);
    CHECK(captured(source_dir() / "meson.build", R"(version : '([0-9.]+)')") == spelled);
}
