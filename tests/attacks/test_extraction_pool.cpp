// extraction_pool and draw_queries (attacks/extraction_pool.hpp): the pool is the
// attacker's images then the extra sets', without labels; a draw takes distinct images
// of the pool, the same ones for the same seed; too many queries, or an extra set of
// another image shape, is refused. train_on_answers refuses soft targets of the wrong
// shape.
#include "nnmark/attacks/distill.hpp"
#include "nnmark/attacks/extraction_pool.hpp"

#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace nnmark;

namespace extraction_pool_test {

// `count` 1x2x2 images whose pixels all hold first + i, so an image names its origin.
dataset numbered_images(index_t count, int first, const std::string& name) {
    dataset data{tensor<std::uint8_t>(shape{count, 1, 2, 2}), std::vector<int>(static_cast<std::size_t>(count), 0), 10,
                 name};
    for (index_t i = 0; i < count; ++i)
        for (auto& pixel : data.images.item(i)) pixel = static_cast<std::uint8_t>(first + i);
    return data;
}

std::vector<int> first_pixels(const unlabeled_images& images) {
    std::vector<int> out;
    for (index_t i = 0; i < images.size(); ++i) out.push_back(images.images.item(i)[0]);
    return out;
}

}  // namespace extraction_pool_test

using namespace extraction_pool_test;

TEST_CASE("extraction_pool: the attacker's images, then each extra set's, without labels") {
    const dataset attacker = numbered_images(3, 0, "mine"), extra = numbered_images(2, 100, "knockoff");
    const unlabeled_images pool = extraction_pool(attacker, {&extra});
    CHECK(pool.images.shape() == shape{5, 1, 2, 2});
    CHECK(first_pixels(pool) == std::vector<int>{0, 1, 2, 100, 101});
    CHECK(pool.name.find("mine + knockoff") != std::string::npos);
    CHECK(extraction_pool(attacker).size() == 3);
    dataset wide = numbered_images(2, 0, "wide");
    wide.images = tensor<std::uint8_t>(shape{2, 3, 2, 2});
    CHECK_THROWS_AS(extraction_pool(attacker, {&wide}), shape_error);
}

TEST_CASE("draw_queries: distinct images of the pool, the same for the same seed; too many is refused") {
    const unlabeled_images pool = extraction_pool(numbered_images(50, 0, "pool"));
    const std::vector<int> drawn = first_pixels(draw_queries(pool, 20, 7));
    CHECK(drawn.size() == 20);
    CHECK(std::set<int>(drawn.begin(), drawn.end()).size() == 20);  // without replacement
    CHECK(first_pixels(draw_queries(pool, 20, 7)) == drawn);
    CHECK(first_pixels(draw_queries(pool, 20, 8)) != drawn);
    const std::vector<int> all = first_pixels(draw_queries(pool, 50, 7));
    CHECK(std::set<int>(all.begin(), all.end()).size() == 50);
    CHECK_THROWS_AS(draw_queries(pool, 51, 7), argument_error);
    CHECK_THROWS_AS(draw_queries(pool, 0, 7), argument_error);
}

TEST_CASE("train_on_answers: soft targets must hold one row of the student's classes per image") {
    sequential<float> student = nnmark::testing::make_small_mnist_net<float>();
    student.initialize(1);
    victim_answers<float> answers;
    answers.labelled = {tensor<std::uint8_t>(shape{4, 1, 28, 28}), {0, 1, 2, 3}, 10, "four"};
    answers.scores = tensor<float>(shape{4, 9});
    progress_line quiet(stderr, 5.0, true);
    CHECK_THROWS_AS(train_on_answers(student, answers, true, training_recipe{}, quiet), shape_error);
    answers.scores = tensor<float>(shape{4, 10});
    for (index_t i = 0; i < 4; ++i) answers.scores.item(i)[static_cast<std::size_t>(i)] = 1.0f;
    training_recipe recipe;
    recipe.epochs = 1;
    recipe.batch = 4;
    CHECK(train_on_answers(student, answers, true, recipe, quiet).size() == 1);
}
