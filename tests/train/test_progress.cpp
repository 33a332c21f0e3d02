// progress.hpp: what a long run prints when its output is a file (a log), and durations.
#include "nnmark/train/progress.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

using namespace nnmark;

namespace progress_test {

// Everything written to `file` so far.
std::string written(std::FILE* file) {
    std::fflush(file);
    std::rewind(file);
    std::string text;
    for (int c; (c = std::fgetc(file)) != EOF;) text += static_cast<char>(c);
    return text;
}

}  // namespace progress_test

TEST_CASE("progress_line: a log gets one update per interval and every finished line") {
    std::FILE* log = std::tmpfile();
    REQUIRE(log != nullptr);
    {
        progress_line progress(log, 3600.0);
        progress.update("first");   // the interval has passed since the epoch
        progress.update("second");  // within the hour: dropped
        progress.finish("done");    // always kept
    }
    CHECK(progress_test::written(log) == "first\ndone\n");
    std::fclose(log);
}

TEST_CASE("progress_line: quiet prints nothing") {
    std::FILE* log = std::tmpfile();
    REQUIRE(log != nullptr);
    progress_line progress(log, 0.0, true);
    progress.update("update");
    progress.finish("finish");
    CHECK(progress_test::written(log).empty());
    std::fclose(log);
}

TEST_CASE("format_duration: seconds, minutes, hours, and ? for nonsense") {
    CHECK(format_duration(12.4) == "12s");
    CHECK(format_duration(65) == "1m05s");
    CHECK(format_duration(7380) == "2h03m");
    CHECK(format_duration(-1) == "?");
    CHECK(format_duration(1e9) == "?");
}
