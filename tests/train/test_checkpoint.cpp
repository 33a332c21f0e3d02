// checkpoint: a saved run restores every parameter, every optimizer buffer and the step
// count exactly, and a file that cannot continue this run is refused with a message.
#include "nnmark/train/checkpoint.hpp"

#include "nnmark/model/model_file.hpp"
#include "../support/files.hpp"
#include "../support/parameters.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace nnmark;

namespace checkpoint_test {

// The tiny net after `steps` optimizer steps on made-up gradients, so the optimizer's
// state buffers are not zero.
struct trained_run {
    sequential<float> net = testing::make_tiny_net<float>();
    std::unique_ptr<optimizer<float>> opt;
    training_recipe recipe;

    trained_run(const std::string& optimizer_name, int steps) {
        recipe.optimizer = optimizer_name;
        recipe.epochs = 5;
        net.initialize(3);
        opt = make_optimizer<float>(recipe);
        for (int s = 0; s < steps; ++s) {
            auto g = net.gradients();
            for (std::size_t i = 0; i < g.size(); ++i) g[i] = 0.01f * static_cast<float>((i * 7 + s) % 13) - 0.06f;
            opt->step(net);
        }
    }
};

std::vector<std::vector<float>> state_of(optimizer<float>& opt) {
    std::vector<std::vector<float>> buffers;
    for (const auto& [name, buffer] : opt.state()) buffers.emplace_back(buffer.begin(), buffer.end());
    return buffers;
}

}  // namespace checkpoint_test
using namespace checkpoint_test;

TEST_CASE("checkpoint: parameters, optimizer state and step count come back bit-identical") {
    testing::temp_dir dir;
    for (const std::string name : {"sgd", "adam"}) {
        CAPTURE(name);
        trained_run saved(name, 3);
        save_checkpoint(dir / "run.ckpt", saved.net, *saved.opt, saved.recipe, 2);

        trained_run fresh(name, 0);
        fresh.net.initialize(99);  // every parameter must be overwritten
        CHECK(load_checkpoint(dir / "run.ckpt", fresh.net, *fresh.opt, fresh.recipe) == 2);
        CHECK(testing::bit_identical(testing::snapshot(fresh.net), testing::snapshot(saved.net)));
        CHECK(fresh.opt->step_count() == 3);
        const auto restored = state_of(*fresh.opt), original = state_of(*saved.opt);
        REQUIRE(restored.size() == original.size());
        CHECK_FALSE(original.empty());
        for (std::size_t b = 0; b < original.size(); ++b) CHECK(testing::bit_identical(restored[b], original[b]));
    }
}

TEST_CASE("checkpoint: files that cannot continue this run are refused") {
    testing::temp_dir dir;
    trained_run saved("sgd", 1);
    save_checkpoint(dir / "run.ckpt", saved.net, *saved.opt, saved.recipe, 2);

    SUBCASE("a model file is not a checkpoint") {
        save_model(saved.net, dir / "model.safetensors");
        trained_run fresh("sgd", 0);
        CHECK_THROWS_WITH_AS(load_checkpoint(dir / "model.safetensors", fresh.net, *fresh.opt, fresh.recipe),
                             doctest::Contains("not an nnmark checkpoint"), format_error);
    }
    SUBCASE("another optimizer's state is missing") {
        trained_run adam("adam", 0);
        CHECK_THROWS_AS(load_checkpoint(dir / "run.ckpt", adam.net, *adam.opt, saved.recipe), format_error);
    }
    SUBCASE("a network of another size") {
        auto wider = testing::make_tiny_net<float>(6);
        trained_run fresh("sgd", 0);
        CHECK_THROWS_WITH_AS(load_checkpoint(dir / "run.ckpt", wider, *fresh.opt, fresh.recipe),
                             doctest::Contains("elements, this run needs"), shape_error);
    }
    SUBCASE("a checkpoint after more epochs than the run has") {
        save_checkpoint(dir / "late.ckpt", saved.net, *saved.opt, saved.recipe, saved.recipe.epochs + 1);
        trained_run fresh("sgd", 0);
        CHECK_THROWS_WITH_AS(load_checkpoint(dir / "late.ckpt", fresh.net, *fresh.opt, fresh.recipe),
                             doctest::Contains("after epoch 6 of a 5-epoch run"), format_error);
    }
}
