#include "nnmark/data/dataset.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// n images [1, 2, 3] whose pixels are 10 * i + k, labels i % 4, 4 classes.
dataset counting_dataset(index_t n) {
    dataset data{tensor<std::uint8_t>(shape{n, 1, 2, 3}), {}, 4, "counting"};
    for (index_t i = 0; i < n; ++i) {
        for (index_t k = 0; k < 6; ++k)
            data.images.item(i)[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(10 * i + k);
        data.labels.push_back(static_cast<int>(i % 4));
    }
    return data;
}

}  // namespace

TEST_CASE("dataset: size, item shape and label counts") {
    const dataset data = counting_dataset(10);
    CHECK(data.size() == 10);
    CHECK(data.item_shape() == shape{1, 2, 3});
    CHECK(data.label_counts() == std::vector<index_t>{3, 3, 2, 2});
    CHECK(dataset{}.size() == 0);
}

TEST_CASE("dataset: subset copies the chosen items in order, repeats allowed") {
    const dataset data = counting_dataset(10);
    const std::vector<index_t> chosen{7, 2, 7};
    const dataset part = data.subset(chosen);
    REQUIRE(part.images.shape() == shape{3, 1, 2, 3});
    CHECK(part.labels == std::vector<int>{3, 2, 3});
    CHECK(part.images.item(0)[5] == 75);
    CHECK(part.images.item(1)[0] == 20);
    CHECK(part.images.item(2)[1] == 71);
    CHECK(part.classes == 4);
    const std::vector<index_t> outside{3, 10};
    const std::string message = error_message([&] { data.subset(outside); });
    INFO(message);
    CHECK(contains(message, "dataset 'counting': index 10 is outside 0..9"));
    CHECK_THROWS_AS(data.subset(outside), argument_error);
}

TEST_CASE("dataset: filter_by_label keeps one class in file order") {
    const dataset twos = counting_dataset(10).filter_by_label(2);
    CHECK(twos.labels == std::vector<int>{2, 2});
    CHECK(twos.images.item(0)[0] == 20);
    CHECK(twos.images.item(1)[0] == 60);
    CHECK(twos.name == "counting[label 2]");
    CHECK(counting_dataset(3).filter_by_label(3).size() == 0);
}

TEST_CASE("dataset: split cuts into the first items and the rest") {
    const auto [first, rest] = counting_dataset(10).split(4);
    CHECK(first.size() == 4);
    CHECK(rest.size() == 6);
    CHECK(first.images.item(3)[0] == 30);
    CHECK(rest.images.item(0)[0] == 40);
    CHECK(rest.labels.front() == 0);
    CHECK(first.name == "counting[:4]");
    CHECK(rest.name == "counting[4:]");
    CHECK(counting_dataset(3).split(3).second.size() == 0);
    CHECK_THROWS_AS(counting_dataset(3).split(4), argument_error);
}

TEST_CASE("dataset: to_float divides by 255 and keeps the allocation for the same batch shape") {
    const dataset data = counting_dataset(30);
    tensor<float> batch;
    const std::vector<index_t> chosen{25, 0};
    to_float(data, chosen, batch);
    REQUIRE(batch.shape() == shape{2, 1, 2, 3});
    CHECK(batch[0] == 250.f / 255.f);
    CHECK(batch[6 + 4] == 4.f / 255.f);
    const float* storage = batch.data();
    const std::vector<index_t> again{29, 1};
    to_float(data, again, batch);
    CHECK(batch.data() == storage);
    CHECK(batch[0] == 290 % 256 / 255.f);  // bytes wrap: image 29 starts at 290 mod 256
    tensor<double> exact;
    to_float(data, again, exact);
    CHECK(exact[6] == 10.0 / 255.0);
    std::vector<int> labels;
    gather_labels(data, again, labels);
    CHECK(labels == std::vector<int>{1, 1});
    const std::vector<index_t> bad{-1};
    CHECK_THROWS_AS(to_float(data, bad, batch), argument_error);
}

TEST_CASE("dataset: validate catches a label count mismatch and labels outside the classes") {
    dataset data = counting_dataset(4);
    CHECK_NOTHROW(data.validate("test"));
    data.labels.push_back(1);
    CHECK_THROWS_AS(data.validate("test"), shape_error);
    data.labels.pop_back();
    data.labels[2] = 4;
    const std::string message = error_message([&] { data.validate("writer"); });
    INFO(message);
    CHECK(contains(message, "writer: dataset 'counting': label 4 of item 2 is outside 0..3"));
    CHECK_THROWS_AS(data.label_counts(), argument_error);
}
