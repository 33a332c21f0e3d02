// dawn_registry: the server's secret and its record of every answer DAWN altered.
//
// DAWN (Szyller et al., ACM MM 2021, Section 4) verifies a suspect by asking it the
// inputs whose answers the API altered and counting how many it answers with the
// altered label; so the API must remember exactly those inputs, labels and clients,
// and lose none when it is killed. A registry is a directory:
//     secret    32 random bytes (OpenSSL RAND_bytes), mode 0600, written atomically on
//               the first start; refused when of another size or readable by group or
//               others (whoever reads it can tell altered answers from honest ones).
//     records   append-only; one record per altered (client, input) pair:
//                   "DWN1"  u32 LE payload length  payload  HMAC-SHA256(secret, payload)
//               payload = u64 LE unix time in ms, u32 LE classes K, u32 LE the model's
//               own label, u32 LE the label answered, u32 LE client length, client,
//               u32 LE rank, rank x u64 LE extents, the image's float32 values (u32 LE).
// Each record is written with one write() and fsync'ed before the answer leaves, under
// a mutex, so concurrent requests never interleave. A record cut short (the process or
// the machine died while writing it) can only be the last one: the reader stops there
// and reports the torn bytes, and the writer truncates them away before appending
// again. A complete record whose tag does not check out is corruption or tampering
// (the tag needs the secret, so no one without it can add or change a record), and the
// reader refuses the registry, as it does a record whose answered label is not the one
// the secret gives its (client, image). The (client, input) pairs recorded are kept in
// memory, so asking again does not record twice; one server at a time holds the
// registry (an exclusive flock on the records file, released by the kernel when the
// server dies).
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/serve/dawn_answers.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nnmark {

struct dawn_record {
    std::string client;
    std::vector<index_t> extents;  // [C, H, W]
    std::vector<float> image;      // as the model saw it
    int classes = 0;
    int own_label = 0;       // the model's answer
    int answered_label = 0;  // what the API answered instead
    std::int64_t unix_ms = 0;
};

struct dawn_registry_contents {
    std::vector<dawn_record> records;
    std::uint64_t complete_bytes = 0;  // the file up to the end of its last complete record
    std::uint64_t torn_bytes = 0;      // after it: a record cut short, ignored
};

namespace detail::dawn {

inline constexpr std::string_view record_magic = "DWN1";
inline constexpr std::size_t frame_header = 8, tag_size = 32;
// No image a server accepts comes near this; a larger length is a broken frame.
inline constexpr std::uint32_t max_payload = 256u << 20;

inline std::filesystem::path secret_path(const std::filesystem::path& dir) { return dir / "secret"; }
inline std::filesystem::path records_path(const std::filesystem::path& dir) { return dir / "records"; }

inline void append_u32(std::string& out, std::uint32_t value) {
    for (int byte = 0; byte < 4; ++byte) out += static_cast<char>((value >> (8 * byte)) & 0xff);
}

inline std::string encode_payload(const dawn_record& r) {
    std::string out;
    append_u64(out, static_cast<std::uint64_t>(r.unix_ms));
    append_u32(out, static_cast<std::uint32_t>(r.classes));
    append_u32(out, static_cast<std::uint32_t>(r.own_label));
    append_u32(out, static_cast<std::uint32_t>(r.answered_label));
    append_u32(out, static_cast<std::uint32_t>(r.client.size()));
    out += r.client;
    append_u32(out, static_cast<std::uint32_t>(r.extents.size()));
    for (index_t e : r.extents) append_u64(out, static_cast<std::uint64_t>(e));
    for (float value : r.image) append_u32(out, std::bit_cast<std::uint32_t>(value));
    return out;
}

// Reads the fields of one payload in order; format_error naming the record otherwise.
class payload_reader {
public:
    payload_reader(std::span<const unsigned char> bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}

    std::span<const unsigned char> take(std::size_t n) {
        if (n > bytes_.size() - at_)
            fail("expected " + std::to_string(n) + " more bytes, found " + std::to_string(bytes_.size() - at_));
        const auto piece = bytes_.subspan(at_, n);
        at_ += n;
        return piece;
    }
    std::uint64_t u64() { return read_u64(take(8)); }
    std::uint32_t u32() {
        const auto b = take(4);
        return std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 | std::uint32_t(b[2]) << 16 | std::uint32_t(b[3]) << 24;
    }
    void expect_end() const {
        if (at_ != bytes_.size())
            fail("expected the payload to end, found " + std::to_string(bytes_.size() - at_) + " more bytes");
    }
    [[noreturn]] void fail(const std::string& what) const { throw format_error(where_ + ": " + what); }

private:
    std::span<const unsigned char> bytes_;
    std::string where_;
    std::size_t at_ = 0;
};

inline dawn_record decode_payload(std::span<const unsigned char> bytes, const std::string& where) {
    payload_reader in(bytes, where);
    dawn_record r;
    r.unix_ms = static_cast<std::int64_t>(in.u64());
    r.classes = static_cast<int>(in.u32());
    r.own_label = static_cast<int>(in.u32());
    r.answered_label = static_cast<int>(in.u32());
    if (r.classes < 2 || r.own_label >= r.classes || r.answered_label >= r.classes || r.own_label == r.answered_label)
        in.fail("expected two different labels of at least 2 classes, found " + std::to_string(r.own_label) + " and " +
                std::to_string(r.answered_label) + " of " + std::to_string(r.classes));
    const auto client = in.take(in.u32());
    r.client.assign(client.begin(), client.end());
    const std::uint32_t rank = in.u32();
    if (rank != 3) in.fail("expected an image of rank 3 ([C, H, W]), found rank " + std::to_string(rank));
    std::uint64_t count = 1;
    for (std::uint32_t axis = 0; axis < rank; ++axis) {
        const std::uint64_t extent = in.u64();
        if (extent == 0 || extent > max_payload)
            in.fail("expected an image extent in 1.." + std::to_string(max_payload) + ", found " +
                    std::to_string(extent));
        count *= extent;
        if (count > max_payload) in.fail("expected at most " + std::to_string(max_payload) + " values, found more");
        r.extents.push_back(static_cast<index_t>(extent));
    }
    r.image.resize(static_cast<std::size_t>(count));
    for (float& value : r.image) value = std::bit_cast<float>(in.u32());
    in.expect_end();
    return r;
}

inline std::string encode_frame(const dawn_record& r, const dawn_secret& secret) {
    const std::string payload = encode_payload(r);
    std::string frame(record_magic);
    append_u32(frame, static_cast<std::uint32_t>(payload.size()));
    frame += payload;
    const dawn_digest tag = hmac(secret, payload);
    frame.append(reinterpret_cast<const char*>(tag.data()), tag.size());
    return frame;
}

inline std::string key_of(const dawn_digest& digest) {
    return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

inline void check_secret_file(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw io_error(os_error("cannot read the DAWN secret", path));
    if (!S_ISREG(st.st_mode)) throw io_error("dawn registry: expected '" + path.string() + "' to be a regular file");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 0777));
        throw io_error("dawn registry: expected the secret '" + path.string() +
                       "' to be readable by its owner only (mode 0600), found mode " + mode + " (chmod 600 it)");
    }
    if (st.st_size != static_cast<off_t>(sizeof(dawn_secret)))
        throw format_error("dawn registry: expected the secret '" + path.string() + "' to hold " +
                           std::to_string(sizeof(dawn_secret)) + " bytes, found " + std::to_string(st.st_size));
}

}  // namespace detail::dawn

// The registry's secret: read (after the checks above), or created when `create` and
// the directory has none yet.
inline dawn_secret open_dawn_secret(const std::filesystem::path& dir, bool create) {
    const auto path = detail::dawn::secret_path(dir);
    std::error_code ec;
    if (create && !std::filesystem::exists(path, ec)) {
        if (std::filesystem::exists(detail::dawn::records_path(dir), ec))
            throw io_error("dawn registry: '" + dir.string() + "' has records but no secret to check them with");
        // Owner-only like the secret: the records tell which answers were altered.
        if (std::filesystem::create_directories(dir, ec))
            std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
        if (ec) throw io_error("dawn registry: cannot create the directory '" + dir.string() + "': " + ec.message());
        dawn_secret fresh{};
        if (RAND_bytes(fresh.data(), static_cast<int>(fresh.size())) != 1)
            throw error("dawn registry: OpenSSL RAND_bytes could not draw a secret");
        write_file_atomically(path, std::span<const unsigned char>(fresh), 0600);
        OPENSSL_cleanse(fresh.data(), fresh.size());
    }
    if (!std::filesystem::is_directory(dir, ec))
        throw io_error("dawn registry: expected a directory at '" + dir.string() + "', found none");
    detail::dawn::check_secret_file(path);
    const std::vector<unsigned char> bytes = read_file(path);
    dawn_secret secret{};
    std::copy_n(bytes.begin(), secret.size(), secret.begin());
    return secret;
}

// Every complete record of `dir`'s records file (none when it does not exist); a torn
// last record is left out and counted; format_error for a record that does not check out.
inline dawn_registry_contents read_dawn_records(const std::filesystem::path& dir, const dawn_secret& secret) {
    using namespace detail::dawn;
    dawn_registry_contents out;
    const auto path = records_path(dir);
    if (!std::filesystem::exists(path)) return out;
    const std::vector<unsigned char> file = read_file(path);
    const std::span<const unsigned char> bytes(file);
    std::size_t at = 0;
    while (at < bytes.size()) {
        const std::string where = "dawn registry '" + path.string() + "', record " +
                                  std::to_string(out.records.size()) + " at byte " + std::to_string(at);
        const std::size_t left = bytes.size() - at;
        if (left < frame_header) break;  // torn in its header
        if (!std::equal(record_magic.begin(), record_magic.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at)))
            throw format_error(where + ": expected the record marker \"DWN1\", found other bytes");
        const std::uint32_t length = payload_reader(bytes.subspan(at + 4, 4), where).u32();
        if (length > max_payload)
            throw format_error(where + ": expected a payload of at most " + std::to_string(max_payload) +
                               " bytes, found " + std::to_string(length));
        if (left < frame_header + length + tag_size) break;  // torn in its payload or tag
        const auto payload = bytes.subspan(at + frame_header, length);
        const dawn_digest tag = hmac(secret, {reinterpret_cast<const char*>(payload.data()), payload.size()});
        if (CRYPTO_memcmp(tag.data(), bytes.data() + at + frame_header + length, tag_size) != 0)
            throw format_error(where + ": expected its HMAC tag to check out with the registry's secret, found another "
                               "(the record was changed or corrupted)");
        dawn_record record = decode_payload(payload, where);
        const int label = dawn_altered_label(dawn_decision_digest(secret, record.client, record.image),
                                             record.own_label, record.classes);
        if (record.answered_label != label)
            throw format_error(where + ": expected the answered label " + std::to_string(label) +
                               " the secret gives this client and image, found " +
                               std::to_string(record.answered_label));
        out.records.push_back(std::move(record));
        at += frame_header + length + tag_size;
    }
    out.complete_bytes = at;
    out.torn_bytes = bytes.size() - at;
    return out;
}

// The server's side: the secret and the records file, open for appending.
// Thread safety: record() may be called from any number of threads at once.
class dawn_registry {
public:
    // Opens the registry in `dir`, creating it (and its secret) on the first start.
    explicit dawn_registry(const std::filesystem::path& dir)
        : dir_(dir), secret_(open_dawn_secret(dir, true)) {
        const dawn_registry_contents contents = read_dawn_records(dir, secret_);
        for (const dawn_record& r : contents.records)
            recorded_.insert(detail::dawn::key_of(dawn_decision_digest(secret_, r.client, r.image)));
        count_ = contents.records.size();
        torn_bytes_ = contents.torn_bytes;
        bytes_ = contents.complete_bytes;
        const auto path = detail::dawn::records_path(dir);
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd_ < 0) throw io_error(detail::os_error("dawn registry: cannot open for appending", path));
        // One server per registry: a second would record the pairs the first has already.
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd_);
            throw io_error("dawn registry: expected '" + dir.string() +
                           "' to be used by no other server, found it locked by one");
        }
        // A torn record would swallow the next one's bytes: it goes before anything is appended.
        if (::ftruncate(fd_, static_cast<off_t>(contents.complete_bytes)) != 0 || ::fsync(fd_) != 0) {
            const std::string message = detail::os_error("dawn registry: cannot cut the torn record off", path);
            ::close(fd_);
            throw io_error(message);
        }
    }
    ~dawn_registry() {
        ::close(fd_);
        OPENSSL_cleanse(secret_.data(), secret_.size());
    }
    dawn_registry(const dawn_registry&) = delete;
    dawn_registry& operator=(const dawn_registry&) = delete;

    const dawn_secret& secret() const { return secret_; }
    // Records read at start: the torn bytes cut off then.
    std::uint64_t torn_bytes_at_start() const { return torn_bytes_; }
    std::size_t size() const {
        const std::lock_guard lock(mutex_);
        return count_;
    }

    // Appends `r` durably unless its (client, input) pair (named by `digest`, from
    // dawn_answers::decide) is recorded already; true when appended.
    bool record(const dawn_record& r, const dawn_digest& digest) {
        const std::string key = detail::dawn::key_of(digest);
        const std::string frame = detail::dawn::encode_frame(r, secret_);
        const std::lock_guard lock(mutex_);
        if (recorded_.contains(key)) return false;
        write_all(frame);
        recorded_.insert(key);
        ++count_;
        bytes_ += frame.size();
        return true;
    }

    // Milliseconds since 1970, the time a record keeps.
    static std::int64_t now_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

private:
    std::filesystem::path records_path() const { return detail::dawn::records_path(dir_); }

    // Writes and flushes `frame`; on failure cuts the file back to its complete records,
    // so a half-written frame never sits between two records.
    void write_all(const std::string& frame) {
        std::size_t done = 0;
        while (done < frame.size()) {
            const ssize_t n = ::write(fd_, frame.data() + done, frame.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fail_append("cannot append to");
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(fd_) != 0) fail_append("cannot flush");
    }

    [[noreturn]] void fail_append(const char* what) {
        const std::string message = detail::os_error(std::string("dawn registry: ") + what, records_path());
        (void)::ftruncate(fd_, static_cast<off_t>(bytes_));
        throw io_error(message);
    }

    std::filesystem::path dir_;
    dawn_secret secret_;
    int fd_ = -1;
    mutable std::mutex mutex_;
    std::set<std::string> recorded_;
    std::size_t count_ = 0;
    std::uint64_t torn_bytes_ = 0;
    std::uint64_t bytes_ = 0;  // of complete records in the file
};

}  // namespace nnmark
