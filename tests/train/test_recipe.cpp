// recipe.hpp: a training recipe refuses values that cannot work, and builds its optimizer.
#include "nnmark/train/recipe.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

using namespace nnmark;

TEST_CASE("training_recipe::validate names the first value that cannot work") {
    CHECK_NOTHROW(training_recipe{}.validate());
    training_recipe r;
    r.epochs = 0;
    CHECK(testing::error_message([&] { r.validate(); }) == "training recipe: epochs must be at least 1, got 0");
    r = {};
    r.optimizer = "rmsprop";
    CHECK(testing::error_message([&] { r.validate(); }) ==
          "training recipe: optimizer must be sgd or adam, got 'rmsprop'");
    r = {};
    r.learning_rate = 0;
    CHECK(testing::contains(testing::error_message([&] { r.validate(); }), "learning rate must be positive"));
    r = {};
    r.schedule = "linear";
    CHECK_THROWS_AS(r.validate(), argument_error);
}

TEST_CASE("make_optimizer builds the recipe's optimizer") {
    training_recipe r;
    CHECK(dynamic_cast<sgd<double>*>(make_optimizer<double>(r).get()) != nullptr);
    r.optimizer = "adam";
    CHECK(dynamic_cast<adam<double>*>(make_optimizer<double>(r).get()) != nullptr);
}
