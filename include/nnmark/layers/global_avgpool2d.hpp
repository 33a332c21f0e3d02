// global_avgpool2d: the mean of each channel's plane, [N, C, H, W] -> [N, C]
// (PyTorch's nn.AdaptiveAvgPool2d(1) followed by a flatten):
//     y[n, c] = 1 / (H W) * sum_{i, j} x[n, c, i, j].
// It lets a convolutional network end in a dense layer whatever the image size, with
// C inputs instead of C H W.
//
// Backward WRITES dx[n, c, i, j] = dy[n, c] / (H W). No parameters, no cache.
//
// Each mean is summed in double, in order, by one thread: the (n, c) planes are split
// among the threads, so the thread count cannot change a result.
#pragma once

#include "nnmark/core/parallel.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <string>

namespace nnmark {

template <class T>
class global_avgpool2d final : public layer<T> {
public:
    std::string kind() const override { return "global_avgpool2d"; }
    layer_config config() const override { return {}; }

    shape configure(const shape& input_item) override {
        if (input_item.rank() != 3 || input_item.count() == 0)
            throw shape_error("global_avgpool2d: expected a non-empty input item [channels, height, width], got " +
                              input_item.str());
        item_ = input_item;
        plane_ = input_item[1] * input_item[2];
        return shape{input_item[0]};
    }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override {
        expect_input(x, item_, kind());
        y.resize(shape{x.batch(), item_[0]});
        for_each_plane(y.size(), [&](index_t p) {
            const T* in = x.data() + p * plane_;
            double sum = 0;
            for (index_t i = 0; i < plane_; ++i) sum += static_cast<double>(in[i]);
            y[p] = static_cast<T>(sum / static_cast<double>(plane_));
        });
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        if (!ctx.input_grad) return;
        expect_input(x, item_, kind());
        expect_shape(dy, shape{x.batch(), item_[0]}, "global_avgpool2d backward (dL/dy)");
        dx.resize(x.shape());
        for_each_plane(dy.size(), [&](index_t p) {
            std::fill_n(dx.data() + p * plane_, plane_, static_cast<T>(static_cast<double>(dy[p]) / static_cast<double>(plane_)));
        });
    }

private:
    // Values per thread below which one more thread costs more than it saves.
    static constexpr long long parallel_grain = 1 << 16;

    // body(p) for every plane p = n * C + c of a batch of `planes` planes.
    template <class Body>
    void for_each_plane(index_t planes, Body&& body) const {
        for_each_chunk(planes, threads_for(static_cast<long long>(planes) * plane_, parallel_grain),
                       [&](int, index_t first, index_t last) {
                           for (index_t p = first; p < last; ++p) body(p);
                       });
    }

    shape item_;
    index_t plane_ = 1;
};

}  // namespace nnmark
