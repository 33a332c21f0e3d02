// Helpers shared by the tests: a temporary directory that cleans up
// after itself, IDX and gzip encoders for building test files, the repository's
// source directory; and (from errors.hpp) a way to check the message of an expected
// nnmark::error.
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/data/cifar10.hpp"

#include "errors.hpp"

#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace nnmark::testing {

using bytes = std::vector<unsigned char>;

// A fresh directory under the system's temp directory, removed with its content.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "nnmark-data-test-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory");
        path = pattern;
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

// The repository root: from the build system when it says, else from this file's path.
// The whole text of `path` ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline std::filesystem::path source_dir() {
#ifdef NNMARK_SOURCE_DIR
    return NNMARK_SOURCE_DIR;
#else
    return std::filesystem::path(__FILE__).lexically_normal().parent_path().parent_path().parent_path();
#endif
}

inline void append_be32(bytes& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(value >> shift));
}

// An IDX file of unsigned bytes: magic 0x000008DD, the extents, then `values`.
inline bytes idx_file(const std::vector<std::uint32_t>& extents, const bytes& values) {
    bytes out{0, 0, 0x08, static_cast<unsigned char>(extents.size())};
    for (std::uint32_t extent : extents) append_be32(out, extent);
    out.insert(out.end(), values.begin(), values.end());
    return out;
}

// `data` compressed as one gzip member.
inline bytes gzip(const bytes& data, int level = Z_BEST_COMPRESSION) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    bytes out(deflateBound(&z, static_cast<uLong>(data.size())));
    z.next_in = const_cast<Bytef*>(data.data());
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    const int status = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    REQUIRE(status == Z_STREAM_END);
    return out;
}

inline void write_bytes(const std::filesystem::path& path, const bytes& content) {
    write_file_atomically(path, std::span<const unsigned char>(content));
}

// An MNIST-format directory (the four IDX files) of generated images a network learns
// in a few steps: image i has label i % 10 and a bright bar across row 2 * label + 4,
// on a noisy dark background.
inline std::filesystem::path write_synthetic_mnist(const std::filesystem::path& folder, std::uint32_t train,
                                                   std::uint32_t test, std::uint64_t seed) {
    std::filesystem::create_directories(folder);
    rng random(seed);
    auto write_split = [&](const std::string& prefix, std::uint32_t count) {
        bytes pixels(count * 784), labels(count);
        for (std::uint32_t i = 0; i < count; ++i) {
            const auto label = static_cast<unsigned char>(i % 10);
            labels[i] = label;
            for (std::uint32_t p = 0; p < 784; ++p) {
                const bool bar = p / 28 == 2u * label + 4u && p % 28 >= 4 && p % 28 < 24;
                pixels[i * 784 + p] = static_cast<unsigned char>(bar ? 200 + random.below(56) : random.below(60));
            }
        }
        write_bytes(folder / (prefix + "-images-idx3-ubyte"), idx_file({count, 28, 28}, pixels));
        write_bytes(folder / (prefix + "-labels-idx1-ubyte"), idx_file({count}, labels));
    };
    write_split("train", train);
    write_split("t10k", test);
    return folder;
}

// A CIFAR-10 directory (cifar-10-batches-bin/ in the real binary format) of generated
// images whose colour and stripes follow the label: `train` training, `test` test images.
inline std::filesystem::path write_synthetic_cifar10(const std::filesystem::path& folder, index_t train, index_t test,
                                                     std::uint64_t seed) {
    const auto [train_set, test_set] = make_synthetic_cifar10(train + test, seed).split(train);
    write_cifar10_dir(folder, train_set, test_set);
    return folder;
}

// The rows of a CSV file with a header, each split at the commas.
inline std::vector<std::vector<std::string>> csv_rows(const std::filesystem::path& path, std::string& header) {
    std::istringstream in(slurp(path));
    std::getline(in, header);
    std::vector<std::vector<std::string>> rows;
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> cells;
        std::istringstream fields(line);
        for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
        rows.push_back(std::move(cells));
    }
    return rows;
}

}  // namespace nnmark::testing
