// batchnorm: y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel.
//
// The input item rank picks the variant, like PyTorch's two classes:
// - [F]       -> BatchNorm1d: F channels, statistics over the batch;
// - [C, H, W] -> BatchNorm2d: C channels, statistics over the batch and the H x W plane (NCHW).
// Output shape = input shape.
//
// Training (forward_train) normalizes with the batch mean and biased variance, and
// updates the running statistics with PyTorch's rule:
//     running = (1 - momentum) * running + momentum * batch_statistic,
// using the UNBIASED variance (divided by M - 1, where M = values per channel) for
// running_var. A batch with M = 1 has no unbiased variance, so it is rejected, as
// PyTorch does. The cache keeps [2, C]: the batch mean and 1 / sqrt(var + eps).
// Inference (infer) normalizes with the running statistics.
//
// Parameters, in PyTorch's order and names: weight [C] (gamma), bias [C] (beta),
// running_mean [C], running_var [C]. Weight decay applies to none of them, and the
// running statistics are not trainable.
// Backward WRITES dx, the gradient through the batch statistics:
//     dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat)),
// and ADDS dgamma = sum(dy * xhat), dbeta = sum(dy), where xhat = (x - mean) / sqrt(var + eps).
//
// Per-channel sums are accumulated in double, in a fixed order: with float
// activations, a 128 x 32 x 32 batch would otherwise lose digits, and the result does
// not depend on the thread count.
#pragma once

#include "nnmark/core/parallel.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace nnmark {

template <class T>
class batchnorm final : public layer<T> {
public:
    explicit batchnorm(double momentum = 0.1, double eps = 1e-5) : momentum_(momentum), eps_(eps) {
        if (!(momentum >= 0.0 && momentum <= 1.0))
            throw argument_error("batchnorm: momentum must be in [0, 1], got " + std::to_string(momentum));
        if (!(eps > 0.0)) throw argument_error("batchnorm: eps must be > 0, got " + std::to_string(eps));
    }

    std::string kind() const override { return "batchnorm"; }
    layer_config config() const override { return {{"momentum", momentum_}, {"eps", eps_}}; }

    shape configure(const shape& input_item) override {
        if (input_item.rank() == 1) {
            spatial_ = 1;
        } else if (input_item.rank() == 3) {
            spatial_ = input_item[1] * input_item[2];
        } else {
            throw shape_error("batchnorm: expected input items [F] (BatchNorm1d) or [C, H, W] (BatchNorm2d), got " +
                              input_item.str());
        }
        channels_ = input_item[0];
        item_ = input_item;
        return input_item;
    }

    std::vector<param_spec> param_specs() const override {
        const shape c{channels_};
        return {{"weight", c, true, false},
                {"bias", c, true, false},
                {"running_mean", c, false, false},
                {"running_var", c, false, false}};
    }

    void bind(std::span<T> params, std::span<T> grads) override {
        const auto expected = static_cast<std::size_t>(4 * channels_);
        if (params.size() != expected || grads.size() != expected)
            throw shape_error("batchnorm: expected parameter and gradient slices of " + std::to_string(expected) +
                              " values (4 x " + std::to_string(channels_) + " channels), got " +
                              std::to_string(params.size()) + " and " + std::to_string(grads.size()));
        params_ = params;
        grads_ = grads;
    }

    void initialize(rng&) override {
        std::fill_n(param(weight), channels_, T(1));
        std::fill_n(param(bias), channels_, T(0));
        std::fill_n(param(running_mean), channels_, T(0));
        std::fill_n(param(running_var), channels_, T(1));
    }

    bool couples_batch_items() const override { return true; }  // the batch statistics

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override {
        expect_input(x, item_, kind());
        y.resize(x.shape());
        for_each_channel(x.batch(), [&](index_t c) {
            const T inv_std = static_cast<T>(1.0 / std::sqrt(static_cast<double>(param(running_var)[c]) + eps_));
            normalize_channel(x, y, c, param(running_mean)[c], inv_std);
        });
    }

    void forward_train(const tensor<T>& x, tensor<T>& y, tensor<T>& cache, train_context<T>&) override {
        expect_input(x, item_, kind());
        const double per_channel = static_cast<double>(x.batch() * spatial_);
        if (per_channel < 2)
            throw shape_error("batchnorm: training needs more than one value per channel to compute batch "
                              "statistics, got input " + x.shape().str());
        y.resize(x.shape());
        cache.resize(shape{2, channels_});
        for_each_channel(x.batch(), [&](index_t c) {
            double sum = 0;
            for_each_value(x.batch(), c, [&](index_t i) { sum += static_cast<double>(x[i]); });
            const double mean = sum / per_channel;
            double squares = 0;
            for_each_value(x.batch(), c, [&](index_t i) {
                const double d = static_cast<double>(x[i]) - mean;
                squares += d * d;
            });
            const double biased_var = squares / per_channel;
            const double unbiased_var = squares / (per_channel - 1);
            T& rm = param(running_mean)[c];
            T& rv = param(running_var)[c];
            rm = static_cast<T>((1 - momentum_) * static_cast<double>(rm) + momentum_ * mean);
            rv = static_cast<T>((1 - momentum_) * static_cast<double>(rv) + momentum_ * unbiased_var);

            cache[c] = static_cast<T>(mean);
            cache[channels_ + c] = static_cast<T>(1.0 / std::sqrt(biased_var + eps_));
            normalize_channel(x, y, c, cache[c], cache[channels_ + c]);
        });
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>& cache,
                  backward_context<T>& ctx) override {
        expect_input(x, item_, kind());
        expect_shape(dy, x.shape(), "batchnorm backward (dL/dy)");
        expect_shape(cache, shape{2, channels_}, "batchnorm backward (statistics from forward_train)");
        if (ctx.input_grad) dx.resize(x.shape());
        const double per_channel = static_cast<double>(x.batch() * spatial_);
        for_each_channel(x.batch(), [&](index_t c) {
            const T mean = cache[c];
            const T inv_std = cache[channels_ + c];
            double sum_dy = 0;
            double sum_dy_xhat = 0;
            for_each_value(x.batch(), c, [&](index_t i) {
                sum_dy += static_cast<double>(dy[i]);
                sum_dy_xhat += static_cast<double>(dy[i]) * static_cast<double>((x[i] - mean) * inv_std);
            });
            if (ctx.param_grads) {
                grad(weight)[c] += static_cast<T>(sum_dy_xhat);
                grad(bias)[c] += static_cast<T>(sum_dy);
            }
            if (!ctx.input_grad) return;
            const T scale = param(weight)[c] * inv_std;
            const T mean_dy = static_cast<T>(sum_dy / per_channel);
            const T mean_dy_xhat = static_cast<T>(sum_dy_xhat / per_channel);
            for_each_value(x.batch(), c, [&](index_t i) {
                const T xhat = (x[i] - mean) * inv_std;
                dx[i] = scale * (dy[i] - mean_dy - xhat * mean_dy_xhat);
            });
        });
    }

private:
    // Slots of the bound parameter slice, in param_specs() order.
    enum slot : index_t { weight = 0, bias = 1, running_mean = 2, running_var = 3 };
    T* param(slot s) const { return params_.data() + s * channels_; }
    T* grad(slot s) const { return grads_.data() + s * channels_; }

    // y = gamma * (x - center) * inv_std + beta over channel c. The difference comes first
    // because it is exact for inputs far from zero, where x * scale + shift would cancel.
    void normalize_channel(const tensor<T>& x, tensor<T>& y, index_t c, T center, T inv_std) const {
        const T scale = param(weight)[c] * inv_std;
        const T shift = param(bias)[c];
        for_each_value(x.batch(), c, [&](index_t i) { y[i] = (x[i] - center) * scale + shift; });
    }

    // Calls body(i) for every flat index i of channel c in a batch: the plane of c in each
    // item, one contiguous run of spatial_ values per item.
    template <class Body>
    void for_each_value(index_t batch, index_t c, Body&& body) const {
        for (index_t n = 0; n < batch; ++n) {
            const index_t start = (n * channels_ + c) * spatial_;
            for (index_t s = 0; s < spatial_; ++s) body(start + s);
        }
    }

    // Channels are independent, so each thread takes whole channels. Every per-channel sum
    // then runs serially in a fixed order, whatever the thread count.
    template <class Body>
    void for_each_channel(index_t batch, Body&& body) const {
        const long long work = static_cast<long long>(batch) * channels_ * spatial_;
#pragma omp parallel for num_threads(threads_for(work, 1 << 15)) schedule(static)
        for (index_t c = 0; c < channels_; ++c) body(c);
    }

    double momentum_;
    double eps_;
    shape item_;
    index_t channels_ = 0;
    index_t spatial_ = 1;
    std::span<T> params_;
    std::span<T> grads_;
};

}  // namespace nnmark
