// trigger_ledger: the record, beside a key, of every trigger image a remote
// verification sent, so that no later verification sends one again.
//
// Why. A thief serving a stolen model sees every query. If every verification sent the
// same trigger images, one logged verification would let him recognise the key's
// queries exactly from then on (answer them with anything but the watermark label)
// while answering every other query honestly: the decoys of serve/query_plan.hpp hide
// a trigger's position, not its pixels. So a trigger image is spent once sent, and
// verify --url sends only unspent ones (watermark/unspent_triggers.hpp).
//
// The file: UTF-8 text, one JSON object per line, one line per verification, appended:
//     {"ledger":"nnmark-trigger-ledger-v1","commitment":<the key's, 64 hex digits>,
//      "time":"2026-12-04T04:05:06Z","url":<the service asked>,"fresh_triggers":<made
//      by the recipe's generator>,"sha256":[<SHA-256 of each trigger image sent>, ...]}
// The SHA-256 is over the image's bytes as sent to the model, uint8 in [C, H, W] order
// (trigger_image_sha256), so anyone can check a thief's logged queries against it.
//
// Durability. An entry is written with one write() on a file opened O_APPEND and
// fsync'ed (the directory too when the file is new) before the first request of its
// verification leaves: a query the thief saw is recorded, whether the verification
// finished or not. A kill during the write can only cut the LAST line short (no
// newline yet): the reader ignores such a torn tail and reports its bytes, and the
// writer truncates it away before appending, so a torn tail never glues itself to the
// next entry. (A torn entry is one whose queries had not been sent yet.) Every complete
// line must be a valid entry of this key: a malformed line, or one of another key's
// commitment, makes the whole ledger refused (format_error, argument_error) rather
// than half-read, since a ledger that forgets spent images is the failure it exists to
// prevent. An open ledger holds an exclusive flock on its file from reading to the
// last append, so two verifications with one ledger cannot pick the same images.
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/core/sha256.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/watermark/key.hpp"

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace nnmark {

inline constexpr std::string_view trigger_ledger_format = "nnmark-trigger-ledger-v1";

// One verification's spending.
struct ledger_entry {
    std::string commitment;           // of the key
    std::string time;                 // UTC, ISO 8601 to the second
    std::string url;                  // the service asked
    std::int64_t fresh_triggers = 0;  // of the images, made by the recipe's generator
    std::vector<std::string> sha256;  // of every trigger image sent
};

struct ledger_contents {
    std::vector<ledger_entry> entries;
    std::uint64_t complete_bytes = 0;  // the file up to the end of its last complete line
    std::uint64_t torn_bytes = 0;      // after it: an entry cut short, ignored
};

// SHA-256 (hex) of image `i` of `images`: its uint8 bytes in [C, H, W] order.
inline std::string trigger_image_sha256(const dataset& images, index_t i) {
    return sha256_hex(images.images.item(i));
}

// The current time as the ledger writes it, e.g. "2026-12-04T04:05:06Z".
inline std::string ledger_time_now() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

namespace detail::ledger {

inline std::string entry_line(const ledger_entry& e) {
    json hashes = json::array();
    for (const std::string& h : e.sha256) hashes.push_back(h);
    json line = json::object();
    line["ledger"] = std::string(trigger_ledger_format);
    line["commitment"] = e.commitment;
    line["time"] = e.time;
    line["url"] = e.url;
    line["fresh_triggers"] = e.fresh_triggers;
    line["sha256"] = std::move(hashes);
    return dump_json(line) + "\n";
}

// The 64-hex-digit string at `v`, else format_error naming the place.
inline std::string hex_digest(const json_view& v) {
    const std::string& text = v.as_string();
    if (!is_sha256_hex(text)) v.fail("expected 64 lowercase hex digits, found \"" + text.substr(0, 80) + "\"");
    return text;
}

inline ledger_entry parse_entry(std::string_view line, const std::string& where) {
    const json doc = parse_json(line, where);
    const json_view v(doc, where);
    v.expect_only_keys({"ledger", "commitment", "time", "url", "fresh_triggers", "sha256"});
    if (v["ledger"].as_string() != trigger_ledger_format)
        v["ledger"].fail("expected \"" + std::string(trigger_ledger_format) + "\", found \"" +
                         v["ledger"].as_string() + "\"");
    ledger_entry e;
    e.commitment = hex_digest(v["commitment"]);
    e.time = v["time"].as_string();
    e.url = v["url"].as_string();
    e.fresh_triggers = v["fresh_triggers"].as_int_at_least(0);
    for (const json_view& h : v["sha256"].elements()) e.sha256.push_back(hex_digest(h));
    if (e.fresh_triggers > static_cast<std::int64_t>(e.sha256.size()))
        v["fresh_triggers"].fail("expected at most the " + std::to_string(e.sha256.size()) +
                                 " images of the entry, found " + std::to_string(e.fresh_triggers));
    return e;
}

}  // namespace detail::ledger

// The entries of the ledger at `path` (none when it does not exist), each checked to be
// of the key whose commitment is `commitment`.
inline ledger_contents read_trigger_ledger(const std::filesystem::path& path, const std::string& commitment) {
    ledger_contents out;
    if (!std::filesystem::exists(path)) return out;
    const std::vector<unsigned char> bytes = read_file(path);
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    std::size_t from = 0;
    for (std::size_t line = 1;; ++line) {
        const std::size_t end = text.find('\n', from);
        if (end == std::string_view::npos) break;  // what follows the last newline is torn
        const std::string where = "trigger ledger " + path.string() + ":" + std::to_string(line);
        ledger_entry e = detail::ledger::parse_entry(text.substr(from, end - from), where);
        if (e.commitment != commitment)
            throw argument_error(where + ": records another key (commitment " + e.commitment.substr(0, 16) +
                                 "...), not this one (" + commitment.substr(0, 16) +
                                 "...); give this key's own ledger with --ledger");
        out.entries.push_back(std::move(e));
        from = end + 1;
    }
    out.complete_bytes = from;
    out.torn_bytes = text.size() - from;
    return out;
}

// A key's ledger, open and locked for one verification: what is spent, and appending.
class trigger_ledger {
public:
    // Opens (creating it when absent) and locks the ledger at `path` of the key of
    // `commitment`, reads it and cuts a torn tail off. Throws io_error when another
    // process holds it, and as read_trigger_ledger does for a ledger it cannot trust.
    trigger_ledger(std::filesystem::path path, std::string commitment)
        : path_(std::move(path)), commitment_(std::move(commitment)) {
        expect_replaceable(path_);
        const bool is_new = !std::filesystem::exists(path_);
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd_ < 0) throw io_error(detail::os_error("trigger ledger: cannot open for appending", path_));
        try {
            if (::flock(fd_, LOCK_EX | LOCK_NB) != 0)
                throw io_error("trigger ledger: expected '" + path_.string() +
                               "' to be used by no other verification, found it locked by one");
            if (is_new) sync_directory();
            const ledger_contents contents = read_trigger_ledger(path_, commitment_);
            for (const ledger_entry& e : contents.entries) spent_.insert(e.sha256.begin(), e.sha256.end());
            entries_ = contents.entries.size();
            torn_bytes_ = contents.torn_bytes;
            bytes_ = contents.complete_bytes;
            if (::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0 || ::fsync(fd_) != 0)
                throw io_error(detail::os_error("trigger ledger: cannot cut the torn entry off", path_));
        } catch (...) {
            ::close(fd_);
            throw;
        }
    }
    ~trigger_ledger() { ::close(fd_); }
    trigger_ledger(const trigger_ledger&) = delete;
    trigger_ledger& operator=(const trigger_ledger&) = delete;

    const std::filesystem::path& path() const { return path_; }
    // SHA-256 of every image an earlier verification sent.
    const std::set<std::string>& spent() const { return spent_; }
    std::size_t entries() const { return entries_; }
    std::uint64_t torn_bytes_at_open() const { return torn_bytes_; }

    // Appends `e` durably (its commitment must be the ledger's) and counts its images spent.
    void append(const ledger_entry& e) {
        if (e.commitment != commitment_)
            throw argument_error("trigger ledger " + path_.string() + ": an entry of commitment " + e.commitment +
                                 " cannot go into the ledger of " + commitment_);
        const std::string line = detail::ledger::entry_line(e);
        for (std::size_t done = 0; done < line.size();) {
            const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fail_append("cannot append to");
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(fd_) != 0) fail_append("cannot flush");
        bytes_ += line.size();
        ++entries_;
        spent_.insert(e.sha256.begin(), e.sha256.end());
    }

private:
    // A new file's name is durable only once its directory is.
    void sync_directory() const {
        const std::filesystem::path dir = path_.has_parent_path() ? path_.parent_path() : ".";
        const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || ::fsync(dfd) != 0) {
            const std::string message = detail::os_error("trigger ledger: cannot flush the directory of", path_);
            if (dfd >= 0) ::close(dfd);
            throw io_error(message);
        }
        ::close(dfd);
    }

    // A failed write leaves no half line: the file is cut back to its complete entries.
    [[noreturn]] void fail_append(const char* what) {
        const std::string message = detail::os_error(std::string("trigger ledger: ") + what, path_);
        (void)::ftruncate(fd_, static_cast<off_t>(bytes_));
        throw io_error(message);
    }

    std::filesystem::path path_;
    std::string commitment_;
    int fd_ = -1;
    std::set<std::string> spent_;
    std::size_t entries_ = 0;
    std::uint64_t torn_bytes_ = 0;
    std::uint64_t bytes_ = 0;  // of complete entries in the file
};

}  // namespace nnmark
