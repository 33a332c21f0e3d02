#include "nnmark/layers/flatten.hpp"

#include "../support/gradient_check.hpp"

#include <doctest/doctest.h>

using namespace nnmark;

TEST_CASE_TEMPLATE("flatten: keeps the NCHW element order, backward restores the shape", T, float, double) {
    for (index_t batch : {1, 3})
        for (const shape& item : {shape{5}, shape{3, 7, 9}, shape{1, 1, 1}, shape{5, 9}}) {
            flatten<T> f;
            CHECK(f.configure(item) == shape{item.count()});
            tensor<T> x(item.prepend(batch));
            for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<T>(i) * T(0.5) - T(3);
            tensor<T> y;
            workspace<T> ws;
            f.infer(x, y, ws);
            REQUIRE(y.shape() == shape{batch, item.count()});
            for (index_t i = 0; i < x.size(); ++i) CHECK(y[i] == x[i]);

            tensor<T> dy(y.shape()), dx, cache;
            for (index_t i = 0; i < dy.size(); ++i) dy[i] = static_cast<T>(2 * i + 1);
            backward_context<T> ctx{ws};
            f.backward(x, y, dy, dx, cache, ctx);
            REQUIRE(dx.shape() == x.shape());
            for (index_t i = 0; i < dx.size(); ++i) CHECK(dx[i] == dy[i]);
        }
}

TEST_CASE("flatten: element (n, c, h, w) lands at c * H * W + h * W + w, as nn.Flatten") {
    flatten<float> f;
    f.configure(shape{3, 2, 4});
    tensor<float> x(shape{2, 3, 2, 4});
    for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
    tensor<float> y;
    workspace<float> ws;
    f.infer(x, y, ws);
    CHECK(y[1 * 24 + 2 * 8 + 1 * 4 + 3] == x.at(1, 2, 1, 3));
}

TEST_CASE("flatten: numerical gradient") {
    testing::check_layer_gradients([] { return std::make_unique<flatten<double>>(); }, shape{3, 3, 5});
}

TEST_CASE("flatten: kind, config and a wrong input") {
    flatten<float> f;
    CHECK(f.kind() == "flatten");
    CHECK(f.config().empty());
    CHECK(f.param_specs().empty());
    f.configure(shape{2, 3});
    tensor<float> y;
    workspace<float> ws;
    CHECK_THROWS_AS(f.infer(tensor<float>(shape{4, 3, 2}), y, ws), shape_error);
    CHECK_THROWS_AS(f.infer(tensor<float>(shape{6}), y, ws), shape_error);
}
