// sha256: SHA-256 digests (FIPS 180-4) through OpenSSL's libcrypto EVP interface.
//
// Contract:
// - sha256 hashes a byte stream fed in pieces with update(); finish() returns the
//   32-byte digest and starts a fresh stream, so one object can hash many messages.
// - to_hex() writes lowercase hexadecimal, two digits per byte, the form sha256sum and
//   Python's hashlib.hexdigest() print; sha256_hex() hashes one buffer.
// - sha256_file_hex() streams a file in 1 MiB pieces (a CIFAR-10 archive is never held
//   whole) and throws io_error naming the file when it cannot be read.
// Why OpenSSL and not our own rounds: digests are evidence (key commitments, dataset
// and model fingerprints), so they come from a widely reviewed implementation.
// Programs using this header link libcrypto (-lcrypto).
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"

#include <openssl/evp.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

using sha256_digest = std::array<unsigned char, 32>;

class sha256 {
public:
    sha256() : context_(EVP_MD_CTX_new()) {
        if (!context_) throw error("sha256: OpenSSL could not allocate a digest context (EVP_MD_CTX_new)");
        start();
    }

    sha256& update(std::span<const unsigned char> bytes) {
        if (!bytes.empty() && EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size()) != 1)
            throw error("sha256: OpenSSL EVP_DigestUpdate failed");
        return *this;
    }

    sha256& update(std::string_view text) {
        return update(std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
    }

    // The digest of everything fed since construction or the previous finish().
    sha256_digest finish() {
        sha256_digest digest{};
        unsigned int length = 0;
        if (EVP_DigestFinal_ex(context_.get(), digest.data(), &length) != 1 || length != digest.size())
            throw error("sha256: OpenSSL EVP_DigestFinal_ex failed");
        start();
        return digest;
    }

private:
    struct context_deleter {
        void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
    };

    void start() {
        if (EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1)
            throw error("sha256: OpenSSL EVP_DigestInit_ex(EVP_sha256()) failed");
    }

    std::unique_ptr<EVP_MD_CTX, context_deleter> context_;
};

inline std::string to_hex(std::span<const unsigned char> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * bytes.size());
    for (unsigned char b : bytes) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0xF]);
    }
    return out;
}

inline std::string sha256_hex(std::span<const unsigned char> bytes) { return to_hex(sha256().update(bytes).finish()); }
inline std::string sha256_hex(std::string_view text) { return to_hex(sha256().update(text).finish()); }

inline std::string sha256_file_hex(const std::filesystem::path& path) {
    // Checked before opening: a FIFO would block the open (core/file_checks.hpp).
    if (const auto st = file_status(path)) expect_regular(*st, path, "read");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(detail::os_error("cannot open", path));
    sha256 hasher;
    std::vector<char> buffer(std::size_t{1} << 20);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        hasher.update(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
    }
    if (in.bad()) throw io_error(detail::os_error("cannot read", path));
    return to_hex(hasher.finish());
}

}  // namespace nnmark
