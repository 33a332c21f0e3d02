// maxpool2d: y[n, c, i, j] = max of the size x size window of x[n, c] whose top-left
// corner is (i * stride, j * stride). No padding, no dilation.
//
// Shapes (NCHW): input item [C, H, W], output item
// [C, (H - size) / stride + 1, (W - size) / stride + 1], rounded down like PyTorch's
// default (ceil_mode=False): rows and columns after the last full window are ignored.
//
// Backward WRITES dx: each dy goes to the argmax of its window, the first maximum in
// row-major order on ties (as PyTorch). When windows overlap (stride < size), their
// contributions ADD. A NaN counts as the maximum, as in PyTorch, so it propagates.
// Backward recomputes the argmax from x instead of caching indices. That costs one more
// pass over the windows, but backward has x anyway, and no index tensor is needed.
// No parameters, no cache.
//
// window_argmax is the definition, one window at a time. The 2x2, stride-2 pooling of
// the paper's networks has a fast path (pool_rows_2x2 / unpool_rows_2x2) that applies
// the same rule to a whole output row in branch-free form, so the compiler vectorizes
// it; tests/layers/test_maxpool2d.cpp compares both with a plain loop on odd sizes.
#pragma once

#include "nnmark/core/parallel.hpp"
#include "nnmark/kernels/positive_part.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace nnmark {

template <class T>
class maxpool2d final : public layer<T> {
public:
    // stride 0 means stride = size (non-overlapping windows, the usual pooling).
    explicit maxpool2d(index_t size, index_t stride = 0) : size_(size), stride_(stride == 0 ? size : stride) {
        if (size < 1) throw argument_error("maxpool2d: window size must be at least 1, got " + std::to_string(size));
        if (stride < 0)
            throw argument_error("maxpool2d: stride must be >= 0 (0 means the window size), got " +
                                 std::to_string(stride));
    }

    std::string kind() const override { return "maxpool2d"; }
    // The resolved stride is written, so the saved architecture does not depend on the 0 default.
    layer_config config() const override {
        return {{"size", static_cast<std::int64_t>(size_)}, {"stride", static_cast<std::int64_t>(stride_)}};
    }

    shape configure(const shape& input_item) override {
        if (input_item.rank() != 3)
            throw shape_error("maxpool2d: expected input items [C, H, W], got " + input_item.str());
        if (input_item[1] < size_ || input_item[2] < size_)
            throw shape_error("maxpool2d: window " + std::to_string(size_) + "x" + std::to_string(size_) +
                              " does not fit in input item " + input_item.str());
        in_ = input_item;
        out_ = shape{in_[0], (in_[1] - size_) / stride_ + 1, (in_[2] - size_) / stride_ + 1};
        return out_;
    }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>&) const override {
        expect_input(x, in_, kind());
        y.resize(out_.prepend(x.batch()));
        for_each_plane(x.batch(), [&](index_t p) {
            const T* in = x.data() + p * in_plane();
            T* out = y.data() + p * out_plane();
            for (index_t i = 0; i < out_[1]; ++i) {
                if (is_2x2()) {
                    pool_rows_2x2(in + 2 * i * in_[2], in + (2 * i + 1) * in_[2], out_[2], out + i * out_[2]);
                    continue;
                }
                for (index_t j = 0; j < out_[2]; ++j) out[i * out_[2] + j] = in[window_argmax(in, i, j)];
            }
        });
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        if (ctx.input_grad) unpool(x, dy, dx, false);
    }

    // The ReLU before the pool: its backward passes the gradient where the pool's input
    // x (its output) is positive; only the window maxima receive a gradient, so only
    // their signs matter.
    bool backward_through_relu(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx,
                               const tensor<T>&, backward_context<T>&) override {
        unpool(x, dy, dx, true);
        return true;
    }

private:
    // dx = dy routed to the window maxima, through the ReLU before the pool when `relu`.
    void unpool(const tensor<T>& x, const tensor<T>& dy, tensor<T>& dx, bool relu) const {
        expect_input(x, in_, kind());
        expect_shape(dy, out_.prepend(x.batch()), "maxpool2d backward (dL/dy)");
        dx.resize(x.shape());
        // One plane per iteration: overlapping windows add into the same plane only, so no
        // two threads ever write the same element.
        for_each_plane(x.batch(), [&](index_t p) {
            const T* in = x.data() + p * in_plane();
            const T* g = dy.data() + p * out_plane();
            T* out = dx.data() + p * in_plane();
            if (is_2x2()) return relu ? unpool_plane_2x2<true>(in, g, out) : unpool_plane_2x2<false>(in, g, out);
            std::fill(out, out + in_plane(), T(0));
            for (index_t i = 0; i < out_[1]; ++i)
                for (index_t j = 0; j < out_[2]; ++j) out[window_argmax(in, i, j)] += g[i * out_[2] + j];
            if (relu)
                for (index_t i = 0; i < in_plane(); ++i) out[i] = relu_gradient(in[i], out[i]);
        });
    }
    index_t in_plane() const { return in_[1] * in_[2]; }
    index_t out_plane() const { return out_[1] * out_[2]; }

    // Offset within an input plane of the maximum of output window (i, j): the first
    // maximum in row-major order, or the last NaN if there is one.
    index_t window_argmax(const T* plane, index_t i, index_t j) const {
        const index_t width = in_[2];
        index_t best = i * stride_ * width + j * stride_;
        for (index_t di = 0; di < size_; ++di) {
            const index_t row = (i * stride_ + di) * width + j * stride_;
            for (index_t dj = 0; dj < size_; ++dj) {
                const T v = plane[row + dj];
                if (v > plane[best] || std::isnan(v)) best = row + dj;
            }
        }
        return best;
    }

    bool is_2x2() const { return size_ == 2 && stride_ == 2; }

    // The rule of window_argmax for one more value of the window: it takes over when it
    // is larger than the best so far, or NaN.
    static bool takes_over(T value, T best) { return value > best || value != value; }

    // `count` outputs of 2x2 windows from two input rows. The sizes come in as
    // arguments: read from members, they would be reloaded after every store.
    static void pool_rows_2x2(const T* top, const T* bottom, index_t count, T* out) {
#pragma omp simd simdlen(4)
        for (index_t j = 0; j < count; ++j) {
            T best = top[2 * j];
            best = takes_over(top[2 * j + 1], best) ? top[2 * j + 1] : best;
            best = takes_over(bottom[2 * j], best) ? bottom[2 * j] : best;
            best = takes_over(bottom[2 * j + 1], best) ? bottom[2 * j + 1] : best;
            out[j] = best;
        }
    }

    // dx of one plane for 2x2 windows: each window's four inputs are written (g at the
    // argmax, 0 elsewhere), so only the row and column no window covers need zeroing.
    template <bool relu>
    void unpool_plane_2x2(const T* in, const T* g, T* out) const {
        const index_t width = in_[2];
        for (index_t i = 0; i < out_[1]; ++i) {
            const index_t top = 2 * i * width;
            unpool_rows_2x2<relu>(in + top, in + top + width, g + i * out_[2], out_[2], out + top, out + top + width);
            if (width % 2 != 0) out[top + width - 1] = out[top + 2 * width - 1] = T(0);
        }
        std::fill(out + 2 * out_[1] * width, out + in_plane(), T(0));
    }

    // The window_argmax scan, with g routed along: each value that takes over moves g
    // to its own position and clears the earlier ones. Then, through the ReLU before
    // the pool when `relu`: the winner's sign decides (the others hold 0 either way).
    // Selects only, so it vectorizes.
    template <bool relu>
    static void unpool_rows_2x2(const T* top, const T* bottom, const T* g, index_t count, T* d_top, T* d_bottom) {
#pragma omp simd simdlen(4)
        for (index_t j = 0; j < count; ++j) {
            T best = top[2 * j], at0 = g[j], at1 = T(0), at2 = T(0), at3 = T(0);
            const T v1 = top[2 * j + 1], v2 = bottom[2 * j], v3 = bottom[2 * j + 1];
            const bool take1 = takes_over(v1, best);
            best = take1 ? v1 : best;
            at1 = take1 ? g[j] : at1;
            at0 = take1 ? T(0) : at0;
            const bool take2 = takes_over(v2, best);
            best = take2 ? v2 : best;
            at2 = take2 ? g[j] : at2;
            at1 = take2 ? T(0) : at1;
            at0 = take2 ? T(0) : at0;
            const bool take3 = takes_over(v3, best);
            best = take3 ? v3 : best;
            at3 = take3 ? g[j] : at3;
            at2 = take3 ? T(0) : at2;
            at1 = take3 ? T(0) : at1;
            at0 = take3 ? T(0) : at0;
            if constexpr (relu) {
                at0 = relu_gradient(best, at0);
                at1 = relu_gradient(best, at1);
                at2 = relu_gradient(best, at2);
                at3 = relu_gradient(best, at3);
            }
            d_top[2 * j] = at0;
            d_top[2 * j + 1] = at1;
            d_bottom[2 * j] = at2;
            d_bottom[2 * j + 1] = at3;
        }
    }

    // Runs body(p) for every (image, channel) plane p of a batch, in parallel when there
    // is enough work to pay for waking threads (window reads; a thread per 2 Ki, about a
    // microsecond, so that batch-1 inference splits the planes of its pools too; by
    // share_chunks, so that a late thread delays nobody). Each plane is one thread's,
    // whichever: the same results for any thread count.
    template <class Body>
    void for_each_plane(index_t batch, Body&& body) const {
        const index_t planes = batch * in_[0];
        const long long work = static_cast<long long>(planes) * out_plane() * size_ * size_;
        const int threads = threads_for(work, 1 << 11);
        share_chunks(planes, std::min<index_t>(planes, index_t(threads) * 4), threads, [&](int, index_t first, index_t last) {
            for (index_t p = first; p < last; ++p) body(p);
        });
    }

    index_t size_;
    index_t stride_;
    shape in_, out_;
};

}  // namespace nnmark
