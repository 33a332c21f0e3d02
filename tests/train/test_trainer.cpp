#include "nnmark/train/trainer.hpp"

#include "nnmark/core/parallel.hpp"
#include "../support/errors.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <vector>

using namespace nnmark;

namespace {

training_recipe tiny_recipe(int epochs) {
    training_recipe r;
    r.epochs = epochs;
    r.batch = 32;  // two shards of 16 with two threads (train/data_parallel.hpp)
    r.learning_rate = 0.05;
    r.seed = 11;
    return r;
}

// Parameters after training the tiny net from `seed` with `threads` threads.
std::vector<float> train_tiny(const training_recipe& recipe, int threads, const dataset& data) {
    set_threads(threads);
    auto net = testing::make_tiny_net<float>();
    net.initialize(recipe.seed);
    trainer<float> t(net, recipe);
    progress_line quiet(stderr, 5.0, true);
    t.fit(data, nullptr, quiet);
    auto p = net.parameters();
    return {p.begin(), p.end()};
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::filesystem::path temp_path(const std::string& name) {
    return std::filesystem::temp_directory_path() / ("nnmark_test_trainer_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST_CASE("trainer: same seed and thread count give bit-identical weights after 100 steps") {
    const dataset data = testing::make_quadrant_dataset(800, 3);  // 25 steps per epoch of 32
    const training_recipe recipe = tiny_recipe(4);                 // 100 steps
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        const auto first = train_tiny(recipe, threads, data);
        const auto second = train_tiny(recipe, threads, data);
        CHECK(bit_identical(first, second));
    }
    training_recipe other = recipe;
    other.seed = 12;
    CHECK_FALSE(bit_identical(train_tiny(recipe, 1, data), train_tiny(other, 1, data)));
}

TEST_CASE("trainer: learns the tiny task well above chance") {
    const dataset train = testing::make_quadrant_dataset(400, 3);
    const dataset test = testing::make_quadrant_dataset(200, 4);
    set_threads(2);
    auto net = testing::make_tiny_net<float>();
    net.initialize(5);
    trainer<float> t(net, tiny_recipe(4));
    progress_line quiet(stderr, 5.0, true);
    const auto epochs = t.fit(train, &test, quiet);
    REQUIRE(epochs.size() == 4);
    CHECK(epochs.back().clean_loss < epochs.front().clean_loss);
    CHECK(epochs.back().test_accuracy > 0.9);  // chance is 0.25
    CHECK(evaluate(net, test).accuracy() == doctest::Approx(epochs.back().test_accuracy));
}

TEST_CASE("trainer: a run resumed from its checkpoint ends bit-identical to an uninterrupted one") {
    const dataset data = testing::make_quadrant_dataset(160, 8);
    const training_recipe recipe = tiny_recipe(3);
    set_threads(2);
    const auto uninterrupted = train_tiny(recipe, 2, data);

    const auto checkpoint = temp_path("resume.ckpt");
    std::filesystem::remove(checkpoint);
    progress_line quiet(stderr, 5.0, true);
    {
        // The first run stops after 2 of 3 epochs (as if killed), leaving its checkpoint.
        training_recipe two = recipe;
        auto net = testing::make_tiny_net<float>();
        net.initialize(recipe.seed);
        trainer<float> t(net, recipe);
        t.set_checkpoint(checkpoint);
        int seen = 0;
        t.on_epoch([&](const epoch_summary&) {
            if (++seen == 2) throw std::runtime_error("interrupted");
        });
        CHECK_THROWS_WITH(t.fit(data, nullptr, quiet), "interrupted");
    }
    auto net = testing::make_tiny_net<float>();
    net.initialize(999);  // resume must overwrite every parameter
    trainer<float> t(net, recipe);
    t.set_checkpoint(checkpoint);
    CHECK(t.resume(data) == 2);
    CHECK(t.fit(data, nullptr, quiet).size() == 1);
    auto p = net.parameters();
    CHECK(bit_identical(uninterrupted, {p.begin(), p.end()}));

    // A different recipe may not continue this run.
    training_recipe changed = recipe;
    changed.learning_rate = 0.1;
    auto other = testing::make_tiny_net<float>();
    trainer<float> t2(other, changed);
    t2.set_checkpoint(checkpoint);
    CHECK_THROWS_AS(t2.resume(data), argument_error);

    // Nor other data, another architecture with the same parameter shapes, or an extra set:
    // each is named in the message.
    auto refused = [&](sequential<float>& n, const dataset& d, const extra_training_set* extra) {
        trainer<float> r(n, recipe);
        if (extra) r.set_extra_set(*extra);
        r.set_checkpoint(checkpoint);
        std::string message;
        try {
            r.resume(d);
        } catch (const argument_error& e) {
            message = e.what();
        }
        return message;
    };
    dataset relabelled = data;
    relabelled.labels[0] = (relabelled.labels[0] + 1) % relabelled.classes;
    auto same = testing::make_tiny_net<float>();
    CHECK(testing::contains(refused(same, relabelled, nullptr), "another data"));
    auto other_dropout = testing::make_small_image_net<float>(shape{1, 8, 8}, 4, 0.5);
    CHECK(testing::contains(refused(other_dropout, data, nullptr), "another architecture"));
    const extra_training_set extra{&data, 1, {}};
    CHECK(testing::contains(refused(same, data, &extra), "another triggers"));
    CHECK(refused(same, data, nullptr).empty());
    std::filesystem::remove(checkpoint);
}

TEST_CASE("trainer: an extra set is mixed in with its repeats and its own logged loss") {
    const dataset clean = testing::make_quadrant_dataset(160, 21);
    // Extra samples: class-0 images with a bright top row, relabelled 3 (a tiny watermark).
    dataset extra = testing::make_quadrant_dataset(40, 22).filter_by_label(0);
    for (index_t i = 0; i < extra.size(); ++i) {
        std::fill_n(extra.images.item(i).data(), 8, std::uint8_t{255});
        extra.labels[static_cast<std::size_t>(i)] = 3;
    }
    set_threads(1);
    auto net = testing::make_tiny_net<float>();
    net.initialize(2);
    trainer<float> t(net, tiny_recipe(8));
    t.set_extra_set({&extra, 5, [](int) { return 1.0; }});
    progress_line quiet(stderr, 5.0, true);
    const auto epochs = t.fit(clean, nullptr, quiet);
    REQUIRE(epochs.size() == 8);
    CHECK(std::isfinite(epochs.front().trigger_loss));
    CHECK(epochs.back().trigger_loss < epochs.front().trigger_loss);
    // The relabelled images are learned: the net now answers 3 for most of them.
    const auto predicted = predict_labels(net, extra);
    CHECK(std::count(predicted.begin(), predicted.end(), 3) > static_cast<long>(predicted.size()) * 3 / 4);
}

TEST_CASE("trainer: rejects a dataset whose images do not fit the model") {
    auto net = testing::make_tiny_net<float>();
    net.initialize(1);
    trainer<float> t(net, tiny_recipe(1));
    dataset wrong{tensor<std::uint8_t>(shape{4, 1, 9, 9}), {0, 1, 2, 3}, 4, "nine-by-nine"};
    progress_line quiet(stderr, 5.0, true);
    CHECK_THROWS_AS(t.fit(wrong, nullptr, quiet), shape_error);
    training_recipe bad = tiny_recipe(1);
    bad.optimizer = "rmsprop";
    CHECK_THROWS_AS(trainer<float>(net, bad), argument_error);
}
