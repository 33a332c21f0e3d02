// progress: the one-line status of a long job (epoch, loss, accuracy, images/s, ETA).
//
// On a terminal the line is redrawn in place; into a file or a pipe (CI logs, nohup)
// a full line is written every few seconds instead, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include <unistd.h>

namespace nnmark {

class progress_line {
public:
    using clock = std::chrono::steady_clock;

    explicit progress_line(std::FILE* out = stderr, double log_interval_seconds = 5.0, bool quiet = false)
        : out_(out), interactive_(::isatty(::fileno(out)) != 0), interval_(log_interval_seconds), quiet_(quiet) {}

    // Show `text` now (terminal) or when the log interval has passed (file).
    void update(const std::string& text) {
        if (quiet_) return;
        const auto now = clock::now();
        if (interactive_) {
            if (last_ && now - *last_ < std::chrono::milliseconds(100)) return;
            std::fprintf(out_, "\r\033[K%s", text.c_str());
            std::fflush(out_);
            pending_newline_ = true;
        } else {
            if (last_ && std::chrono::duration<double>(now - *last_).count() < interval_) return;
            std::fprintf(out_, "%s\n", text.c_str());
            std::fflush(out_);
        }
        last_ = now;
    }

    // A line that always stays (end of an epoch, a result).
    void finish(const std::string& text) {
        if (quiet_) return;
        if (interactive_ && pending_newline_) std::fprintf(out_, "\r\033[K");
        std::fprintf(out_, "%s\n", text.c_str());
        std::fflush(out_);
        pending_newline_ = false;
        last_ = clock::now();
    }

private:
    std::FILE* out_;
    bool interactive_;
    double interval_;
    bool quiet_;
    bool pending_newline_ = false;
    // When a line was last shown; none yet: the first update shows at once (steady_clock's
    // epoch is often the boot, so comparing with time_point{} would hide it on a fresh machine).
    std::optional<clock::time_point> last_;
};

// "1m05s", "2h03m", "12s": durations for humans.
inline std::string format_duration(double seconds) {
    if (!(seconds >= 0) || seconds > 1e7) return "?";
    const long s = static_cast<long>(seconds + 0.5);
    char buffer[32];
    if (s >= 3600) std::snprintf(buffer, sizeof buffer, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) std::snprintf(buffer, sizeof buffer, "%ldm%02lds", s / 60, s % 60);
    else std::snprintf(buffer, sizeof buffer, "%lds", s);
    return buffer;
}

}  // namespace nnmark
