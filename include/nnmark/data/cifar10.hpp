// cifar10: the binary CIFAR-10 format (cifar-10-batches-bin/), a writer for it, and a
// small synthetic, learnable dataset in the same format for tests.
//
// Format: a file is a sequence of 3073-byte records: 1 label byte (0-9), then the
// 1024 red, 1024 green and 1024 blue bytes of a 32x32 image, each plane row-major.
// That pixel order is NCHW already, so a record's 3072 pixel bytes are one item of
// images [N, 3, 32, 32]. The training set is data_batch_1.bin .. data_batch_5.bin,
// the test set test_batch.bin (10,000 records each in the real dataset).
//
// Errors: io_error for a missing directory or file (the message says where the files
// belong), format_error for a size that is not a whole number of records or a label
// outside 0..9, naming the file and the byte offset.
// parse_cifar10 takes bytes already in memory: it is what the loader calls and what
// the fuzz target tests/fuzz/fuzz_cifar10.cpp exercises.
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/data/dataset.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numbers>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace nnmark {

inline constexpr index_t cifar10_side = 32;
inline constexpr index_t cifar10_channels = 3;
inline constexpr std::size_t cifar10_image_bytes = 3 * 32 * 32;
inline constexpr std::size_t cifar10_record_bytes = 1 + cifar10_image_bytes;
inline constexpr int cifar10_training_files = 5;

namespace detail {

// Number of records in a file of `file_bytes` bytes; throws unless it is a positive whole number.
inline index_t cifar10_record_count(std::size_t file_bytes, std::string_view source) {
    const std::string record =
        "the " + std::to_string(cifar10_record_bytes) + "-byte CIFAR-10 record (1 label byte + 3072 pixel bytes)";
    if (file_bytes == 0) throw format_error(std::string(source) + ": file is empty, expected records of " + record);
    if (const std::size_t tail = file_bytes % cifar10_record_bytes; tail != 0)
        throw format_error(std::string(source) + ": size " + std::to_string(file_bytes) +
                           " bytes is not a multiple of " + record + ": the last record, from byte offset " +
                           std::to_string(file_bytes - tail) + ", has only " + std::to_string(tail) + " bytes");
    return static_cast<index_t>(file_bytes / cifar10_record_bytes);
}

// Decodes the records of one file into items [first, first + records) of `into`.
inline void decode_cifar10_records(std::span<const unsigned char> bytes, std::string_view source, dataset& into,
                                   index_t first) {
    const index_t records = cifar10_record_count(bytes.size(), source);
    if (first + records > into.size()) throw io_error(std::string(source) + ": the file grew while it was being read");
    for (index_t r = 0; r < records; ++r) {
        const auto record = bytes.subspan(static_cast<std::size_t>(r) * cifar10_record_bytes, cifar10_record_bytes);
        if (record[0] > 9)
            throw format_error(std::string(source) + ": label " + std::to_string(record[0]) + " at byte offset " +
                               std::to_string(static_cast<std::size_t>(r) * cifar10_record_bytes) + " (record " +
                               std::to_string(r) + ") is outside 0..9");
        into.labels[static_cast<std::size_t>(first + r)] = record[0];
        std::ranges::copy(record.subspan(1), into.images.item(first + r).begin());
    }
}

inline dataset empty_cifar10(index_t count, std::string name) {
    return dataset{tensor<std::uint8_t>(shape{count, cifar10_channels, cifar10_side, cifar10_side}),
                   std::vector<int>(static_cast<std::size_t>(count)), 10, std::move(name)};
}

// The folder holding the .bin files: dir/cifar-10-batches-bin/ if it exists, else dir.
inline std::filesystem::path cifar10_batches_dir(const std::filesystem::path& dir) {
    if (std::filesystem::is_directory(dir / "cifar-10-batches-bin")) return dir / "cifar-10-batches-bin";
    if (std::filesystem::is_directory(dir)) return dir;
    throw io_error("CIFAR-10 directory '" + dir.string() +
                   "' does not exist: run datasets/fetch.sh cifar10, or put the cifar-10-batches-bin/ folder of "
                   "cifar-10-binary.tar.gz there");
}

inline std::vector<std::filesystem::path> cifar10_files(const std::filesystem::path& folder, bool train) {
    if (!train) return {folder / "test_batch.bin"};
    std::vector<std::filesystem::path> files;
    for (int k = 1; k <= cifar10_training_files; ++k)
        files.push_back(folder / ("data_batch_" + std::to_string(k) + ".bin"));
    return files;
}

}  // namespace detail

// The records of one CIFAR-10 batch file held in memory, as a dataset named `source`.
inline dataset parse_cifar10(std::span<const unsigned char> bytes, std::string_view source) {
    dataset data = detail::empty_cifar10(detail::cifar10_record_count(bytes.size(), source), std::string(source));
    detail::decode_cifar10_records(bytes, source, data, 0);
    return data;
}

// The CIFAR-10 training set (data_batch_1..5.bin, in that order) or test set
// (test_batch.bin) from `dir`, which is either cifar-10-batches-bin/ itself or the
// folder holding it.
inline dataset load_cifar10(const std::filesystem::path& dir, bool train) {
    const std::filesystem::path folder = detail::cifar10_batches_dir(dir);
    const std::vector<std::filesystem::path> files = detail::cifar10_files(folder, train);
    // Sizes first, so the images are allocated once and no file is held twice in memory.
    index_t total = 0;
    for (const auto& file : files) {
        const auto status = file_status(file);
        if (status) expect_regular(*status, file, "read");  // a FIFO or a directory: named, not "not found"
        if (!status)
            throw io_error("'" + file.string() + "' not found: a CIFAR-10 " + (train ? "training" : "test") +
                           " set needs " + (train ? "data_batch_1.bin .. data_batch_5.bin" : "test_batch.bin") +
                           " in '" + folder.string() + "' (run datasets/fetch.sh cifar10)");
        std::error_code failure;
        const std::uintmax_t bytes = std::filesystem::file_size(file, failure);
        if (failure) throw io_error("cannot read the size of '" + file.string() + "': " + failure.message());
        total += detail::cifar10_record_count(bytes, file.string());
    }
    dataset data = detail::empty_cifar10(total, train ? "cifar10-train" : "cifar10-test");
    index_t first = 0;
    for (const auto& file : files) {
        const std::vector<unsigned char> bytes = read_file(file);
        detail::decode_cifar10_records(bytes, file.string(), data, first);
        first += static_cast<index_t>(bytes.size() / cifar10_record_bytes);
    }
    if (first != total) throw io_error("'" + folder.string() + "': CIFAR-10 files shrank while they were being read");
    return data;
}

// Writes `data` (images [N, 3, 32, 32], 10 classes) as one CIFAR-10 batch file, atomically.
inline void write_cifar10_batch(const std::filesystem::path& path, const dataset& data) {
    data.validate("write_cifar10_batch");
    const shape item{cifar10_channels, cifar10_side, cifar10_side};
    if (!(data.item_shape() == item))
        throw shape_error("write_cifar10_batch: '" + path.string() + "' takes images " + item.str() + ", dataset '" +
                          data.name + "' has " + data.item_shape().str());
    if (data.classes != 10)
        throw argument_error("write_cifar10_batch: CIFAR-10 files hold 10 classes, dataset '" + data.name + "' has " +
                             std::to_string(data.classes));
    std::vector<unsigned char> bytes(static_cast<std::size_t>(data.size()) * cifar10_record_bytes);
    for (index_t i = 0; i < data.size(); ++i) {
        unsigned char* record = bytes.data() + static_cast<std::size_t>(i) * cifar10_record_bytes;
        record[0] = static_cast<unsigned char>(data.labels[static_cast<std::size_t>(i)]);
        std::ranges::copy(data.images.item(i), record + 1);
    }
    write_file_atomically(path, bytes);
}

// Writes dir/cifar-10-batches-bin/ as the real dataset lays it out: `train` cut into
// five consecutive parts data_batch_1..5.bin, and `test` as test_batch.bin.
inline void write_cifar10_dir(const std::filesystem::path& dir, const dataset& train, const dataset& test) {
    if (train.size() < cifar10_training_files || test.size() < 1)
        throw argument_error("write_cifar10_dir: need at least 5 training items and 1 test item, got " +
                             std::to_string(train.size()) + " and " + std::to_string(test.size()));
    const std::filesystem::path folder = dir / "cifar-10-batches-bin";
    if (std::error_code failure; !std::filesystem::create_directories(folder, failure) && failure)
        throw io_error("write_cifar10_dir: cannot create '" + folder.string() + "': " + failure.message());
    const std::vector<std::filesystem::path> files = detail::cifar10_files(folder, true);
    for (int k = 0; k < cifar10_training_files; ++k) {
        const index_t begin = train.size() * k / cifar10_training_files;
        const index_t end = train.size() * (k + 1) / cifar10_training_files;
        std::vector<index_t> part(static_cast<std::size_t>(end - begin));
        std::iota(part.begin(), part.end(), begin);
        write_cifar10_batch(files[static_cast<std::size_t>(k)], train.subset(part));
    }
    write_cifar10_batch(folder / "test_batch.bin", test);
}

// `count` CIFAR-format images that a small network learns in a few epochs.
// Image i has label i % 10 (balanced classes) and is drawn from rng(seed).derive(i), so
// the first k images are the same whatever the count. An image of class c is the
// class's colour, plus a sinusoidal grating at angle c * 18 degrees with a random
// phase (something spatial for convolutions to find), plus a random brightness shift
// and per-pixel Gaussian noise, clamped to 0..255.
inline dataset make_synthetic_cifar10(index_t count, std::uint64_t seed) {
    if (count < 0) throw argument_error("make_synthetic_cifar10: negative count " + std::to_string(count));
    // Red, green, blue of each class, far enough apart that colour alone separates them.
    static constexpr std::array<std::array<double, 3>, 10> palette{{{200, 60, 60}, {60, 190, 60}, {60, 60, 200},
                                                                    {200, 200, 60}, {190, 60, 190}, {60, 190, 190},
                                                                    {230, 140, 40}, {120, 80, 40}, {150, 150, 150},
                                                                    {50, 50, 50}}};
    dataset data = detail::empty_cifar10(count, "synthetic-cifar10");
    const rng base(seed);
    for (index_t i = 0; i < count; ++i) {
        const int label = static_cast<int>(i % 10);
        const auto& colour = palette[static_cast<std::size_t>(label)];
        rng random = base.derive(static_cast<std::uint64_t>(i));
        const double angle = label * std::numbers::pi / 10, phase = random.uniform(0, 2 * std::numbers::pi);
        const double shift = random.uniform(-20, 20);
        std::uint8_t* image = data.images.item(i).data();
        for (index_t y = 0; y < cifar10_side; ++y)
            for (index_t x = 0; x < cifar10_side; ++x) {
                const double along = (x * std::cos(angle) + y * std::sin(angle)) * 2 * std::numbers::pi / 8;
                const double grating = 40 * std::sin(along + phase) + shift;
                for (index_t c = 0; c < cifar10_channels; ++c) {
                    const double value = colour[static_cast<std::size_t>(c)] + grating + random.normal(0, 20);
                    image[(c * cifar10_side + y) * cifar10_side + x] =
                        static_cast<std::uint8_t>(std::clamp(std::lround(value), 0L, 255L));
                }
            }
        data.labels[static_cast<std::size_t>(i)] = label;
    }
    return data;
}

}  // namespace nnmark
