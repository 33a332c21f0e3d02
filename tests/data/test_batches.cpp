#include "nnmark/data/batches.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <map>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// How often each (source, index) appears in the batches of one epoch, batch by batch.
std::map<std::pair<int, index_t>, int> visits(const minibatch_sampler& sampler, std::uint64_t epoch,
                                              std::vector<index_t>* batch_sizes = nullptr) {
    const std::vector<batch_entry> order = sampler.epoch_order(epoch);
    std::map<std::pair<int, index_t>, int> seen;
    for (index_t b = 0; b < sampler.batches_per_epoch(); ++b) {
        const auto batch = sampler.batch(order, b);
        if (batch_sizes) batch_sizes->push_back(static_cast<index_t>(batch.size()));
        for (const batch_entry& e : batch) ++seen[{e.source, e.index}];
    }
    return seen;
}

dataset filled(index_t n, std::uint8_t base, int label) {
    dataset data{tensor<std::uint8_t>(shape{n, 1, 2, 2}), std::vector<int>(static_cast<std::size_t>(n), label), 10,
                 "d"};
    for (index_t i = 0; i < data.images.size(); ++i) data.images[i] = static_cast<std::uint8_t>(base + i);
    return data;
}

}  // namespace

TEST_CASE("batches: every item exactly once per epoch, the last partial batch kept") {
    const minibatch_sampler sampler(103, 10, 7);
    CHECK(sampler.epoch_size() == 103);
    CHECK(sampler.batches_per_epoch() == 11);
    for (std::uint64_t epoch : {0u, 1u, 5u}) {
        std::vector<index_t> sizes;
        const auto seen = visits(sampler, epoch, &sizes);
        CHECK(seen.size() == 103);
        for (const auto& [entry, count] : seen) {
            CHECK(entry.first == 0);
            CHECK(count == 1);
        }
        CHECK(sizes.front() == 10);
        CHECK(sizes.back() == 3);
    }
    const auto order = sampler.epoch_order(0);
    CHECK_THROWS_AS(sampler.batch(order, 11), argument_error);
    CHECK_THROWS_AS(minibatch_sampler(10, 0, 1), argument_error);
}

TEST_CASE("batches: the order depends only on the seed and the epoch") {
    const minibatch_sampler a(500, 32, 11), b(500, 32, 11), other_seed(500, 32, 12);
    CHECK(a.epoch_order(3) == b.epoch_order(3));
    CHECK(a.epoch_order(3) != a.epoch_order(4));
    CHECK(a.epoch_order(3) != other_seed.epoch_order(3));
    // Shuffled: far from the identity order.
    const auto order = a.epoch_order(0);
    int in_place = 0;
    for (std::size_t i = 0; i < order.size(); ++i) in_place += order[i].index == static_cast<index_t>(i);
    CHECK(in_place < 10);
    // Asking for a later epoch first does not change an earlier one.
    const minibatch_sampler fresh(500, 32, 11);
    (void)fresh.epoch_order(9);
    CHECK(fresh.epoch_order(3) == a.epoch_order(3));
}

TEST_CASE("batches: an extra source is mixed in with its repeats") {
    minibatch_sampler sampler(1000, 64, 3);
    const int triggers = sampler.add_source(100, 10);
    CHECK(triggers == 1);
    CHECK(sampler.epoch_size() == 2000);
    CHECK(sampler.batches_per_epoch() == 32);
    const auto seen = visits(sampler, 2);
    CHECK(seen.size() == 1100);
    for (const auto& [entry, count] : seen) CHECK(count == (entry.first == triggers ? 10 : 1));
    // The triggers are spread over the epoch, not bunched at its end.
    const auto order = sampler.epoch_order(2);
    const auto first_half =
        std::count_if(order.begin(), order.begin() + 1000, [](const batch_entry& e) { return e.source == 1; });
    CHECK(first_half > 400);
    CHECK(first_half < 600);
    CHECK_THROWS_AS(sampler.add_source(-1), argument_error);
}

TEST_CASE("batches: gather_batch takes each entry from its source, in batch order") {
    const dataset train = filled(5, 0, 3), triggers = filled(2, 100, 7);
    const dataset* sources[] = {&train, &triggers};
    const std::vector<batch_entry> entries{{1, 1}, {0, 4}, {1, 0}};
    tensor<float> x;
    std::vector<int> labels;
    gather_batch<float>(sources, entries, x, labels);
    REQUIRE(x.shape() == shape{3, 1, 2, 2});
    CHECK(labels == std::vector<int>{7, 3, 7});
    CHECK(x[0] == 104.f / 255.f);  // triggers item 1 starts at 100 + 4
    CHECK(x[4] == 16.f / 255.f);   // train item 4 starts at 16
    CHECK(x[8 + 3] == 103.f / 255.f);
    const float* storage = x.data();
    gather_batch<float>(sources, entries, x, labels);
    CHECK(x.data() == storage);

    const std::vector<batch_entry> unknown{{2, 0}};
    const std::string message = error_message([&] { gather_batch<float>(sources, unknown, x, labels); });
    INFO(message);
    CHECK(contains(message, "entry 0 names source 2 but 2 were given"));
    const std::vector<batch_entry> outside{{0, 5}};
    CHECK_THROWS_AS(gather_batch<float>(sources, outside, x, labels), argument_error);
    const dataset wide{tensor<std::uint8_t>(shape{1, 1, 2, 3}), {0}, 10, "wide"};
    const dataset* mixed[] = {&train, &wide};
    CHECK_THROWS_AS(gather_batch<float>(mixed, entries, x, labels), shape_error);
}
