// eigen_view: Eigen maps share the tensor's or the parameter buffer's elements, in
// row-major order, so what is edited through them is the weights themselves; sizes
// that do not fit are refused with the expected and the found count.
#include "nnmark/core/eigen_view.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

#include <span>
#include <type_traits>
#include <vector>

using namespace nnmark;
using testing::contains;
using testing::error_message;

namespace eigen_view_test {

// A tensor whose element i is i: each matrix entry then names the element it views.
template <class T>
tensor<T> counting(const shape& s) {
    tensor<T> t(s);
    for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(i);
    return t;
}

}  // namespace eigen_view_test

TEST_CASE("eigen_view: a tensor is its outermost axis by the rest, row-major, without a copy") {
    tensor<float> t = eigen_view_test::counting<float>(shape{2, 3});
    auto m = as_eigen_matrix(t);
    CHECK(m.rows() == 2);
    CHECK(m.cols() == 3);
    CHECK(m.data() == t.data());
    for (index_t r = 0; r < 2; ++r)
        for (index_t c = 0; c < 3; ++c) CHECK(m(r, c) == t[r * 3 + c]);

    // A convolution weight [O, I, kH, kW] is the O x (I kH kW) matrix of its GEMM.
    const tensor<double> conv = eigen_view_test::counting<double>(shape{4, 2, 3, 3});
    const auto w = as_eigen_matrix(conv);
    CHECK(w.rows() == 4);
    CHECK(w.cols() == 18);
    CHECK(w(3, (1 * 3 + 2) * 3 + 1) == conv.at(3, 1, 2, 1));

    // A bias is a column; a scalar tensor a 1 x 1 matrix.
    const tensor<float> bias(shape{5}, 1.0f);
    CHECK(as_eigen_matrix(bias).rows() == 5);
    CHECK(as_eigen_matrix(bias).cols() == 1);
    const tensor<float> scalar(shape{}, 7.0f);
    CHECK(as_eigen_matrix(scalar)(0, 0) == 7.0f);
}

TEST_CASE("eigen_view: weights edited through the map, as an auditor would, change the buffer") {
    // One parameter buffer as a model holds it: a dense weight [2, 3], then its bias [2].
    std::vector<float> parameters = {1, 2, 3, 4, 5, 6, 10, 20};
    const std::span<float> all(parameters);
    auto weight = as_eigen_matrix(all.first(6), shape{2, 3});
    auto bias = as_eigen_matrix(all.subspan(6), shape{2});

    // Unit 1 switched off, unit 0's weights halved, the bias moved: all in place.
    weight.row(1).setZero();
    weight.row(0) *= 0.5f;
    bias(1, 0) = -1;
    CHECK(parameters == std::vector<float>{0.5f, 1, 1.5f, 0, 0, 0, 10, -1});

    // Eigen's algebra reads the same numbers: y = W x + b for x = (2, 2, 2).
    const Eigen::Vector3f x(2, 2, 2);
    const Eigen::Vector2f y = weight * x + bias;
    CHECK(y(0) == doctest::Approx(16));
    CHECK(y(1) == doctest::Approx(-1));

    // A tensor edited through the map sees the edit too.
    tensor<float> t(shape{3, 2}, 1.0f);
    as_eigen_matrix(t).col(1).setConstant(4);
    CHECK(t[1] == 4.0f);
    CHECK(t[5] == 4.0f);
    CHECK(t[4] == 1.0f);
}

TEST_CASE("eigen_view: a const tensor gives a read-only view") {
    const tensor<float> t = eigen_view_test::counting<float>(shape{2, 2});
    const auto m = as_eigen_matrix(t);
    static_assert(std::is_same_v<decltype(m.data()), const float*>);
    static_assert(std::is_same_v<decltype(as_eigen_matrix(std::span<const float>(t.span()), t.shape()).data()),
                                 const float*>);
    CHECK(m.squaredNorm() == doctest::Approx(0 + 1 + 4 + 9));
}

TEST_CASE("eigen_view: rows x cols regroups the same elements") {
    tensor<float> images = eigen_view_test::counting<float>(shape{2, 1, 2, 3});
    auto rows = as_eigen_matrix(images, 4, 3);  // (N C H) x W: one image row per matrix row
    CHECK(rows.data() == images.data());
    CHECK(rows(3, 2) == images.at(1, 0, 1, 2));
    const tensor<float>& read_only = images;
    static_assert(std::is_same_v<decltype(as_eigen_matrix(read_only, 6, 2).data()), const float*>);
    CHECK(as_eigen_matrix(read_only, 6, 2)(5, 1) == 11.0f);
}

TEST_CASE("eigen_view: sizes that do not fit are refused with a one-line shape_error") {
    tensor<float> t(shape{2, 4});
    const std::string regrouped = error_message<shape_error>([&] { as_eigen_matrix(t, 3, 3); });
    CHECK(contains(regrouped, "as_eigen_matrix: expected 9 elements for shape [3, 3], found 8"));
    std::vector<float> five(5);
    const std::string spanned =
        error_message<shape_error>([&] { as_eigen_matrix(std::span<float>(five), shape{2, 3}); });
    CHECK(contains(spanned, "expected 6 elements for shape [2, 3], found 5"));
    CHECK_FALSE(contains(regrouped + spanned, "\n"));
    // A negative extent is refused by the shape itself, as an nnmark::error.
    CHECK_THROWS_AS(as_eigen_matrix(t, -2, -4), nnmark::error);
}
