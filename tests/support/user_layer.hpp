// A layer written outside the library, as a user would: a learned scale per channel,
// y[n, c, ...] = weight[c] * x[n, c, ...], with weight initialized to the config's
// "init". The tests register it as "test_channel_scale" (register_test_layer) and check
// that models holding it are rebuilt from their architecture: saved, loaded and
// trained data-parallel.
#pragma once

#include "nnmark/layers/layer.hpp"
#include "nnmark/model/layer_factory.hpp"

#include <algorithm>
#include <string>

namespace nnmark::testing {

template <class T>
class channel_scale final : public layer<T> {
public:
    explicit channel_scale(double init) : init_(init) {}

    std::string kind() const override { return "test_channel_scale"; }
    layer_config config() const override { return {{"init", init_}}; }
    shape configure(const shape& input_item) override {
        item_ = input_item;
        return input_item;
    }
    std::vector<param_spec> param_specs() const override { return {{"weight", shape{item_[0]}, true, false}}; }
    void bind(std::span<T> params, std::span<T> grads) override {
        weight_ = params;
        grad_ = grads;
    }
    void initialize(rng&) override { std::fill(weight_.begin(), weight_.end(), static_cast<T>(init_)); }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override {
        expect_input(x, item_, kind());
        y.resize(x.shape());
        for (index_t i = 0; i < x.size(); ++i) y[i] = weight_[channel(i)] * x[i];
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        if (ctx.input_grad) dx.resize(x.shape());
        for (index_t i = 0; i < x.size(); ++i) {
            if (ctx.param_grads) grad_[channel(i)] += dy[i] * x[i];
            if (ctx.input_grad) dx[i] = weight_[channel(i)] * dy[i];
        }
    }

private:
    std::size_t channel(index_t flat) const {
        return static_cast<std::size_t>((flat / (item_.count() / item_[0])) % item_[0]);
    }

    double init_;
    shape item_;
    std::span<T> weight_, grad_;
};

// Registers channel_scale<T> once per process, whichever test asks first.
template <class T>
void register_test_layer() {
    static const bool registered = [] {
        register_layer<T>("test_channel_scale",
                          [](config_reader& c) { return std::make_unique<channel_scale<T>>(c.real("init")); });
        return true;
    }();
    (void)registered;
}

}  // namespace nnmark::testing
