#include "nnmark/data/cifar10.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <numeric>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

bool same_items(const dataset& a, const dataset& b) {
    return a.labels == b.labels && a.images.shape() == b.images.shape() &&
           std::equal(a.images.data(), a.images.data() + a.images.size(), b.images.data());
}

// `records` CIFAR records with labels r % 10 and pixel bytes (r + k) mod 256.
bytes cifar_records(std::size_t records) {
    bytes out(records * cifar10_record_bytes);
    for (std::size_t r = 0; r < records; ++r) {
        out[r * cifar10_record_bytes] = static_cast<unsigned char>(r % 10);
        for (std::size_t k = 0; k < cifar10_image_bytes; ++k)
            out[r * cifar10_record_bytes + 1 + k] = static_cast<unsigned char>((r + k) % 256);
    }
    return out;
}

}  // namespace

TEST_CASE("cifar10: records decode to NCHW images with red, green, blue planes in file order") {
    const dataset data = parse_cifar10(cifar_records(3), "three.bin");
    REQUIRE(data.images.shape() == shape{3, 3, 32, 32});
    CHECK(data.labels == std::vector<int>{0, 1, 2});
    CHECK(data.name == "three.bin");
    // Record 2, green plane (k = 1024 + ...), row 5, column 7.
    CHECK(data.images.at(2, 1, 5, 7) == (2 + 1024 + 5 * 32 + 7) % 256);
}

TEST_CASE("cifar10: write_cifar10_batch lays records out as the format says and reads back") {
    temp_dir dir;
    dataset data = make_synthetic_cifar10(12, 5);
    data.images.at(3, 2, 31, 0) = 201;  // blue plane, last row, first column of image 3
    write_cifar10_batch(dir / "batch.bin", data);
    const bytes file = read_file(dir / "batch.bin");
    REQUIRE(file.size() == 12 * cifar10_record_bytes);
    CHECK(file[3 * cifar10_record_bytes] == 3);
    CHECK(file[3 * cifar10_record_bytes + 1 + 2 * 1024 + 31 * 32] == 201);
    CHECK(same_items(parse_cifar10(file, "batch.bin"), data));
    CHECK_THROWS_AS(
        write_cifar10_batch(dir / "batch.bin", dataset{tensor<std::uint8_t>(shape{1, 1, 28, 28}), {0}, 10, "mnist"}),
        shape_error);
}

TEST_CASE("cifar10: load_cifar10 reads the five training files in order, from the folder or its parent") {
    temp_dir dir;
    const dataset train = make_synthetic_cifar10(23, 1), test = make_synthetic_cifar10(4, 2);
    write_cifar10_dir(dir.path, train, test);
    for (int k = 1; k <= 5; ++k)
        CHECK(std::filesystem::exists(dir / ("cifar-10-batches-bin/data_batch_" + std::to_string(k) + ".bin")));
    CHECK(std::filesystem::file_size(dir / "cifar-10-batches-bin/data_batch_1.bin") == 4 * cifar10_record_bytes);
    const dataset loaded = load_cifar10(dir.path, true);
    CHECK(same_items(loaded, train));
    CHECK(loaded.name == "cifar10-train");
    CHECK(same_items(load_cifar10(dir / "cifar-10-batches-bin", true), train));
    CHECK(same_items(load_cifar10(dir.path, false), test));
}

TEST_CASE("cifar10: a size that is not a whole number of records names the file, the size and the record size") {
    bytes file = cifar_records(2);
    file.resize(file.size() + 5);
    const std::string message = error_message([&] { parse_cifar10(file, "odd.bin"); });
    INFO(message);
    CHECK(contains(message, "odd.bin: size 6151 bytes is not a multiple of the 3073-byte CIFAR-10 record"));
    CHECK(contains(message, "the last record, from byte offset 6146, has only 5 bytes"));
    CHECK_THROWS_AS(parse_cifar10(file, "odd.bin"), format_error);
    CHECK(contains(error_message([] { parse_cifar10({}, "empty.bin"); }), "empty.bin: file is empty"));

    temp_dir dir;
    write_cifar10_dir(dir.path, make_synthetic_cifar10(5, 1), make_synthetic_cifar10(1, 1));
    write_bytes(dir / "cifar-10-batches-bin/test_batch.bin", file);
    const std::string loaded = error_message([&] { load_cifar10(dir.path, false); });
    INFO(loaded);
    CHECK(contains(loaded, (dir / "cifar-10-batches-bin/test_batch.bin").string() + ": size 6151 bytes"));
}

TEST_CASE("cifar10: a label outside 0..9 names the file, the byte offset and the record") {
    bytes file = cifar_records(3);
    file[cifar10_record_bytes] = 11;
    const std::string message = error_message([&] { parse_cifar10(file, "bad-label.bin"); });
    INFO(message);
    CHECK(contains(message, "bad-label.bin: label 11 at byte offset 3073 (record 1) is outside 0..9"));
}

TEST_CASE("cifar10: a missing directory or file says where the files belong") {
    temp_dir dir;
    const std::string no_dir = error_message([&] { load_cifar10(dir / "cifar10", true); });
    INFO(no_dir);
    CHECK(contains(no_dir, "CIFAR-10 directory '" + (dir / "cifar10").string() + "' does not exist"));
    CHECK(contains(no_dir, "datasets/fetch.sh cifar10"));
    CHECK(contains(no_dir, "cifar-10-batches-bin/"));
    CHECK_THROWS_AS(load_cifar10(dir / "cifar10", true), io_error);

    write_cifar10_dir(dir.path, make_synthetic_cifar10(10, 1), make_synthetic_cifar10(2, 1));
    std::filesystem::remove(dir / "cifar-10-batches-bin/data_batch_3.bin");
    const std::string no_file = error_message([&] { load_cifar10(dir.path, true); });
    INFO(no_file);
    const std::string missing = (dir / "cifar-10-batches-bin/data_batch_3.bin").string();
    CHECK(contains(no_file, std::string("'").append(missing).append("' not found")));
    // The test batch alone still loads, and holds what was written.
    const dataset test = load_cifar10(dir.path, false);
    const dataset written = make_synthetic_cifar10(2, 1);
    CHECK(test.labels == written.labels);
    CHECK(test.images.shape() == written.images.shape());
    CHECK(std::equal(test.images.span().begin(), test.images.span().end(), written.images.span().begin(),
                     written.images.span().end()));
}

TEST_CASE("cifar10: the synthetic dataset is deterministic, balanced and separable by colour") {
    const dataset a = make_synthetic_cifar10(200, 42);
    CHECK(same_items(a, make_synthetic_cifar10(200, 42)));
    CHECK_FALSE(same_items(a, make_synthetic_cifar10(200, 43)));
    std::vector<index_t> first_30(30);
    std::iota(first_30.begin(), first_30.end(), index_t{0});
    CHECK(same_items(make_synthetic_cifar10(30, 42), a.subset(first_30)));
    CHECK(a.label_counts() == std::vector<index_t>(10, 20));

    // Learnable: the nearest class-mean colour, fitted on the first 100 images,
    // classifies the other 100 almost perfectly.
    const auto mean_colour = [](const dataset& d, index_t i) {
        std::array<double, 3> colour{};
        for (index_t c = 0; c < 3; ++c)
            for (index_t p = 0; p < 1024; ++p)
                colour[static_cast<std::size_t>(c)] +=
                    d.images.item(i)[static_cast<std::size_t>(c * 1024 + p)] / 1024.0;
        return colour;
    };
    std::array<std::array<double, 3>, 10> centre{};
    for (index_t i = 0; i < 100; ++i)
        for (std::size_t c = 0; c < 3; ++c)
            centre[static_cast<std::size_t>(a.labels[static_cast<std::size_t>(i)])][c] += mean_colour(a, i)[c] / 10;
    int correct = 0;
    for (index_t i = 100; i < 200; ++i) {
        const auto colour = mean_colour(a, i);
        std::size_t best = 0;
        double best_distance = 1e300;
        for (std::size_t k = 0; k < 10; ++k) {
            double distance = 0;
            for (std::size_t c = 0; c < 3; ++c) distance += (colour[c] - centre[k][c]) * (colour[c] - centre[k][c]);
            if (distance < best_distance) best_distance = distance, best = k;
        }
        correct += static_cast<int>(best) == a.labels[static_cast<std::size_t>(i)];
    }
    CHECK(correct >= 95);
}
