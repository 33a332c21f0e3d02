// conv2d: 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d), square kernel,
// the same stride on both axes, optional "same" zero padding.
//
// Shapes (NCHW): input [N, Cin, H, W] -> output [N, Cout, Ho, Wo], with
//   y[n, o, i, j] = bias[o] + sum_{c, ki, kj} weight[o, c, ki, kj]
//                              * x[n, c, i * stride + ki - pad_top, j * stride + kj - pad_left]
// (x reads 0 outside the image). Parameters, in this order: "weight" [Cout, Cin, k, k]
// (OIHW, PyTorch's layout, weight-decayed) and "bias" [Cout] (not decayed).
// Padding:
// - valid: no padding, Ho = (H - k) / stride + 1; the kernel must fit (H, W >= k).
// - same: TensorFlow's SAME, Ho = ceil(H / stride); the total padding
//   max((Ho - 1) * stride + k - H, 0) is split with the odd element on the bottom
//   (right). For stride 1 and odd k this is (k - 1) / 2 on every side, which is also
//   what PyTorch and Keras call 'same'.
//
// Lowering, per image, by stride and window size:
// - stride 1 and a window of 32 values or more (every layer of the paper's networks
//   but the first, see channel_last()): kernels/conv_nhwc.hpp. The image is copied
//   once to channel-last order, zero-bordered by the padding, and the GEMM microkernel
//   reads the convolution windows in place: out = bias + valid_conv(padded image,
//   weight). Backward, with g = dL/dout:
//     dL/dweight += the window-by-gradient sums (conv_weight_grad_nhwc)   ADDED
//     dL/dx       = valid_conv(g bordered by k-1-pad, flipped weight)      WRITTEN
//   The second is the "full" correlation: each input position is written once.
// - otherwise: im2col. out [Cout x Ho*Wo] = weight [Cout x K] * columns
//   [K x Ho*Wo] with K = Cin*k*k and columns = im2col(image) (kernels/im2col.hpp);
//     dL/dx      = col2im(weight^T * g)          WRITTEN into dx
//     dL/dweight += g * columns^T               ADDED
//   The weight gradient is computed transposed, as columns * g^T [K x Cout]: gemm then
//   packs (transposes) g, Cout x Ho*Wo, instead of columns, K x Ho*Wo.
// Either way dL/dbias += the row sums of g, dx is written when ctx.input_grad and the
// parameter gradients are added when ctx.param_grads. The two lowerings meet the same
// tests (forward against the direct definition, numerical gradients in double).
//
// Threads: images are split into contiguous blocks, one per thread (OpenMP static).
// A single image stays on one thread: split by output rows, batch-1 inference ran
// 20-25% slower on two threads than on one on the project's machine (each layer waits
// at a barrier for the other core). Each block uses its own slice of the workspace for
// its image copies or columns and, in backward, accumulates its own partial parameter
// gradient ([dweight | dbias]); the partials
// are then added to the bound gradient in block order. So the result depends on the
// thread count but never on scheduling: same seed + same thread count = bit-identical
// gradients.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/parallel.hpp"
#include "nnmark/kernels/conv_nhwc.hpp"
#include "nnmark/kernels/gemm.hpp"
#include "nnmark/kernels/im2col.hpp"
#include "nnmark/kernels/positive_part.hpp"
#include "nnmark/layers/initializers.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

enum class padding { valid, same };

// The names used in the architecture JSON.
inline std::string padding_name(padding pad) { return pad == padding::same ? "same" : "valid"; }

inline padding parse_padding(std::string_view name) {
    if (name == "valid") return padding::valid;
    if (name == "same") return padding::same;
    throw argument_error("conv2d: expected padding \"valid\" or \"same\", got \"" + std::string(name) + "\"");
}

namespace detail {

// Elements between per-block scratch slices: whole 64-byte cache lines, so that two
// threads never write to the same line.
template <class T>
index_t cache_line_padded(index_t count) {
    constexpr index_t line = 64 / static_cast<index_t>(sizeof(T));
    return (count + line - 1) / line * line;
}

}  // namespace detail

template <class T>
class conv2d final : public layer<T> {
public:
    conv2d(index_t out_channels, index_t kernel, index_t stride = 1, padding pad = padding::valid)
        : out_channels_(out_channels), kernel_(kernel), stride_(stride), pad_(pad) {
        expect_at_least_one(out_channels, "out_channels");
        expect_at_least_one(kernel, "kernel");
        expect_at_least_one(stride, "stride");
    }

    std::string kind() const override { return "conv2d"; }
    layer_config config() const override {
        return {{"out_channels", static_cast<std::int64_t>(out_channels_)},
                {"kernel", static_cast<std::int64_t>(kernel_)},
                {"stride", static_cast<std::int64_t>(stride_)},
                {"padding", padding_name(pad_)}};
    }

    shape configure(const shape& input_item) override {
        if (input_item.rank() != 3 || input_item.count() == 0)
            throw shape_error("conv2d: expected a non-empty input item [channels, height, width], got " +
                              input_item.str());
        const axis_plan rows = plan_axis(input_item, 1, "height");
        const axis_plan cols = plan_axis(input_item, 2, "width");
        input_item_ = input_item;
        in_channels_ = input_item[0];
        height_ = input_item[1];
        width_ = input_item[2];
        out_h_ = rows.out;
        out_w_ = cols.out;
        pad_top_ = rows.pad_before;
        pad_left_ = cols.pad_before;
        output_item_ = shape{out_channels_, out_h_, out_w_};
        return output_item_;
    }

    std::vector<param_spec> param_specs() const override {
        return {{"weight", shape{out_channels_, in_channels_, kernel_, kernel_}, true, true},
                {"bias", shape{out_channels_}, true, false}};
    }

    void bind(std::span<T> params, std::span<T> grads) override {
        const index_t expected = weight_count() + out_channels_;
        for (const auto& slice : {params, grads})
            if (static_cast<index_t>(slice.size()) != expected)
                throw shape_error("conv2d: bound slice has " + std::to_string(slice.size()) + " elements, expected " +
                                  std::to_string(expected) + " (weight " + param_specs()[0].shape.str() +
                                  " + bias " + param_specs()[1].shape.str() + ")");
        weight_ = params.first(static_cast<std::size_t>(weight_count()));
        bias_ = params.subspan(static_cast<std::size_t>(weight_count()));
        grads_ = grads;
    }

    // He normal weights because every network here puts a ReLU after its convolutions
    // (see initializers.hpp); zero biases, as a ReLU net needs no offset to start.
    void initialize(rng& random) override {
        he_normal(weight_, patch_size(), random);
        std::fill(bias_.begin(), bias_.end(), T(0));
    }

    void infer(const tensor<T>& x, tensor<T>& y, workspace<T>& scratch) const override {
        forward(x, y, scratch, false);
    }

    // The ReLU that follows a convolution in every network here is applied where each
    // output is stored: in registers on the channel-last path, on the image's output
    // while it is in cache when unrolled. Backward never reads the output.
    bool infer_then_relu(const tensor<T>& x, tensor<T>& y, workspace<T>& scratch) const override {
        forward(x, y, scratch, true);
        return true;
    }

    void backward(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx, const tensor<T>&,
                  backward_context<T>& ctx) override {
        expect_input(x, input_item_, kind());
        const index_t images = x.batch();
        expect_shape(dy, output_item_.prepend(images), "conv2d backward (gradient of the output)");
        if (ctx.input_grad) dx.resize(x.shape());
        if (!ctx.input_grad && !ctx.param_grads) return;

        const int blocks = blocks_for(images);
        const index_t partial_stride = detail::cache_line_padded<T>(static_cast<index_t>(grads_.size()));
        T* partials = ctx.param_grads ? ctx.scratch.get(partial_stride * blocks, 1).data() : nullptr;
        if (channel_last()) backward_channel_last(x, dy, dx, ctx, blocks, partials, partial_stride);
        else backward_unrolled(x, dy, dx, ctx, blocks, partials, partial_stride);
        if (ctx.param_grads) add_partials_in_block_order(partials, partial_stride, blocks);
    }

private:
    // How one spatial axis is padded and how many outputs it gives.
    struct axis_plan {
        index_t out;
        index_t pad_before;
    };

    // Work (multiply-adds) below which one more thread costs more than it saves.
    static constexpr long long parallel_grain = 1LL << 18;

    static void expect_at_least_one(index_t value, const char* what) {
        if (value < 1)
            throw argument_error(std::string("conv2d: expected ") + what + " >= 1, got " + std::to_string(value));
    }

    axis_plan plan_axis(const shape& input_item, int axis, const char* axis_name) const {
        const index_t extent = input_item[axis];
        if (pad_ == padding::same) {
            const index_t out = (extent + stride_ - 1) / stride_;
            const index_t total = std::max<index_t>((out - 1) * stride_ + kernel_ - extent, 0);
            return {out, total / 2};
        }
        if (extent < kernel_)
            throw shape_error("conv2d: kernel " + std::to_string(kernel_) + " does not fit input item " +
                              input_item.str() + ": " + axis_name + " " + std::to_string(extent) +
                              " < kernel with valid padding (use padding same or a smaller kernel)");
        return {(extent - kernel_) / stride_ + 1, 0};
    }

    index_t patch_size() const { return in_channels_ * kernel_ * kernel_; }  // K, the fan-in
    index_t out_pixels() const { return out_h_ * out_w_; }
    index_t weight_count() const { return out_channels_ * patch_size(); }
    index_t column_count() const { return patch_size() * out_pixels(); }

    // Stride 1 takes the channel-last path of kernels/conv_nhwc.hpp when the window has
    // at least `channel_last_min_patch` values (every layer of the paper's networks but
    // the first); other strides, and first layers with a window of 9 (MNIST, 1 channel)
    // or 27 (CIFAR-10, 3 channels), unroll with im2col. Measured: im2col ran those two
    // first layers' forward passes 2x faster, as a tile of the channel-last product
    // then does as many stores as multiply-adds per output.
    static constexpr index_t channel_last_min_patch = 32;
    bool channel_last() const { return stride_ == 1 && patch_size() >= channel_last_min_patch; }

    // The input, zero-bordered by the padding, as the valid convolution reads it.
    index_t padded_height() const { return out_h_ + kernel_ - 1; }
    index_t padded_width() const { return out_w_ + kernel_ - 1; }
    index_t padded_input_size() const {
        return channel_last_size<T>(padded_height(), padded_width(), in_channels_);
    }
    // The output gradient, bordered so that the valid correlation with the flipped
    // weights gives the input gradient at exactly the input's positions.
    index_t bordered_height() const { return height_ + kernel_ - 1; }
    index_t bordered_width() const { return width_ + kernel_ - 1; }
    index_t bordered_grad_size() const {
        return channel_last_size<T>(bordered_height(), bordered_width(), out_channels_);
    }

    void pad_input(const T* image, T* padded) const {
        to_channel_last(image, in_channels_, height_, width_, pad_top_, pad_left_, padded_height(), padded_width(),
                        padded);
    }

    // y = the convolution of x, through a ReLU when `relu`.
    void forward(const tensor<T>& x, tensor<T>& y, workspace<T>& scratch, bool relu) const {
        expect_input(x, input_item_, kind());
        const index_t images = x.batch();
        y.resize(output_item_.prepend(images));
        const int blocks = blocks_for(images);
        if (channel_last()) {
            const index_t image_stride = detail::cache_line_padded<T>(padded_input_size());
            T* padded = scratch.get(image_stride * blocks, 0).data();
            T* packed = scratch.get(conv_packed_size<T>(out_channels_, patch_size()), 1).data();
            pack_conv_weights(weight_.data(), out_channels_, in_channels_, kernel_, conv_role::forward, packed);
            for_each_chunk(images, blocks, [&](int b, index_t first, index_t last) {
                for (index_t n = first; n < last; ++n) {
                    T* image = padded + b * image_stride;
                    pad_input(x.item(n).data(), image);
                    conv_forward_nhwc(image, padded_height(), padded_width(), in_channels_, kernel_, packed,
                                      out_channels_, bias_.data(), y.item(n).data(), relu);
                }
            });
            return;
        }
        const index_t column_stride = detail::cache_line_padded<T>(column_count());
        T* columns = scratch.get(column_stride * blocks, 0).data();
        for_each_chunk(images, blocks, [&](int b, index_t first, index_t last) {
            for (index_t n = first; n < last; ++n) {
                forward_image(x.item(n).data(), y.item(n).data(), columns + b * column_stride);
                if (relu) apply_relu(y.item(n));
            }
        });
    }

    static void apply_relu(std::span<T> values) {
        T* v = values.data();
        const auto count = static_cast<index_t>(values.size());
#pragma omp simd
        for (index_t i = 0; i < count; ++i) v[i] = positive_part(v[i]);
    }

    // Per image: dweight (window-major, [Cout][k*k*Cin]) and dbias into the block's
    // partial; dx = the valid correlation of the bordered gradient with the flipped
    // weights. Why the border works: output pixel oh reads padded rows oh..oh+k-1, so
    // input row h (padded row h + pad_top) receives from oh = h + pad_top - ki; with the
    // gradient shifted down by k-1-pad_top, that is bordered row h + (k-1-ki).
    void backward_channel_last(const tensor<T>& x, const tensor<T>& dy, tensor<T>& dx, backward_context<T>& ctx,
                               int blocks, T* partials, index_t partial_stride) const {
        const index_t image_stride = detail::cache_line_padded<T>(padded_input_size());
        const index_t grad_stride = detail::cache_line_padded<T>(bordered_grad_size());
        T* padded = ctx.param_grads ? ctx.scratch.get(image_stride * blocks, 0).data() : nullptr;
        T* bordered = ctx.input_grad ? ctx.scratch.get(grad_stride * blocks, 2).data() : nullptr;
        T* flipped = nullptr;
        if (ctx.input_grad) {
            flipped = ctx.scratch.get(conv_packed_size<T>(in_channels_, kernel_ * kernel_ * out_channels_), 3).data();
            pack_conv_weights(weight_.data(), out_channels_, in_channels_, kernel_, conv_role::input_gradient,
                              flipped);
        }
        const index_t pixels = out_pixels();
        for_each_chunk(x.batch(), blocks, [&](int b, index_t first, index_t last) {
            T* partial = partials ? partials + b * partial_stride : nullptr;
            if (partial) std::fill_n(partial, grads_.size(), T(0));
            for (index_t n = first; n < last; ++n) {
                const T* grad_out = dy.item(n).data();
                if (partial) {
                    T* image = padded + b * image_stride;
                    pad_input(x.item(n).data(), image);
                    conv_weight_grad_nhwc(image, padded_height(), padded_width(), in_channels_, kernel_, grad_out,
                                          out_channels_, partial);
                    add_row_sums(grad_out, out_channels_, pixels, partial + weight_count());
                }
                if (ctx.input_grad) {
                    T* grad_image = bordered + b * grad_stride;
                    to_channel_last(grad_out, out_channels_, out_h_, out_w_, kernel_ - 1 - pad_top_,
                                    kernel_ - 1 - pad_left_, bordered_height(), bordered_width(), grad_image);
                    conv_forward_nhwc(grad_image, bordered_height(), bordered_width(), out_channels_, kernel_,
                                      flipped, in_channels_, static_cast<const T*>(nullptr), dx.item(n).data());
                }
            }
        });
    }

    void backward_unrolled(const tensor<T>& x, const tensor<T>& dy, tensor<T>& dx, backward_context<T>& ctx,
                           int blocks, T* partials, index_t partial_stride) const {
        const index_t column_stride = detail::cache_line_padded<T>(column_count());
        T* columns = ctx.scratch.get(column_stride * blocks, 0).data();
        for_each_chunk(x.batch(), blocks, [&](int b, index_t first, index_t last) {
            T* block_columns = columns + b * column_stride;
            T* partial = partials ? partials + b * partial_stride : nullptr;
            if (partial) std::fill_n(partial, grads_.size(), T(0));
            for (index_t n = first; n < last; ++n) {
                const T* image = x.item(n).data();
                const T* grad_out = dy.item(n).data();
                if (partial) accumulate_param_grads(image, grad_out, block_columns, partial);
                if (ctx.input_grad) input_grad_image(grad_out, dx.item(n).data(), block_columns);
            }
        });
    }

    int blocks_for(index_t images) const {
        const long long work = static_cast<long long>(images) * weight_count() * out_pixels();
        return static_cast<int>(std::max<index_t>(1, std::min<index_t>(threads_for(work, parallel_grain), images)));
    }

    void unroll(const T* image, T* columns) const {
        im2col(image, in_channels_, height_, width_, kernel_, stride_, pad_top_, pad_left_, out_h_, out_w_, columns);
    }

    // out = bias (broadcast over pixels) + weight * columns.
    void forward_image(const T* image, T* out, T* columns) const {
        unroll(image, columns);
        const index_t pixels = out_pixels();
        for (index_t o = 0; o < out_channels_; ++o)
            std::fill_n(out + o * pixels, pixels, bias_[static_cast<std::size_t>(o)]);
        gemm(false, false, out_channels_, pixels, patch_size(), T(1), weight_.data(), patch_size(), columns, pixels,
             T(1), out, pixels);
    }

    // partial = [dweight^T | dbias] of this block: dweight^T += columns * g^T,
    // dbias += row sums of g.
    void accumulate_param_grads(const T* image, const T* grad_out, T* columns, T* partial) const {
        unroll(image, columns);
        const index_t pixels = out_pixels();
        gemm(false, true, patch_size(), out_channels_, pixels, T(1), columns, pixels, grad_out, pixels, T(1), partial,
             out_channels_);
        add_row_sums(grad_out, out_channels_, pixels, partial + weight_count());
    }

    // sums[r] += the sum of row r of m [rows x cols], in column order. Eight rows at a
    // time: the same sums as one row at a time, but eight independent chains of
    // additions keep the adder busy where one chain would wait on each result.
    static void add_row_sums(const T* m, index_t rows, index_t cols, T* sums) {
        constexpr index_t together = 8;
        for (index_t r0 = 0; r0 < rows; r0 += together) {
            const index_t count = std::min(together, rows - r0);
            T acc[together] = {};
            for (index_t c = 0; c < cols; ++c)
                for (index_t r = 0; r < count; ++r) acc[r] += m[(r0 + r) * cols + c];
            for (index_t r = 0; r < count; ++r) sums[r0 + r] += acc[r];
        }
    }

    // dx = col2im(weight^T * g); `columns` is scratch for weight^T * g.
    void input_grad_image(const T* grad_out, T* grad_in, T* columns) const {
        const index_t pixels = out_pixels();
        gemm(true, false, patch_size(), pixels, out_channels_, T(1), weight_.data(), patch_size(), grad_out, pixels,
             T(0), columns, pixels);
        std::fill_n(grad_in, input_item_.count(), T(0));
        col2im(columns, in_channels_, height_, width_, kernel_, stride_, pad_top_, pad_left_, out_h_, out_w_, grad_in);
    }

    // grads_ += the partials, block after block. A partial's dweight is [K x Cout]
    // (im2col order) when unrolled and [Cout][k*k*Cin] (window-major) when channel-last;
    // either is read into the OIHW [Cout x Cin x k x k] layout of grads_.
    void add_partials_in_block_order(const T* partials, index_t partial_stride, int blocks) {
        const index_t patch = patch_size(), taps = kernel_ * kernel_;
        for (int b = 0; b < blocks; ++b) {
            const T* partial = partials + b * partial_stride;
            T* grad = grads_.data();
            for (index_t o = 0; o < out_channels_; ++o)
                for (index_t c = 0; c < in_channels_; ++c)
                    for (index_t tap = 0; tap < taps; ++tap, ++grad)
                        *grad += channel_last() ? partial[o * patch + tap * in_channels_ + c]
                                                : partial[(c * taps + tap) * out_channels_ + o];
            for (index_t o = 0; o < out_channels_; ++o)
                grads_[static_cast<std::size_t>(weight_count() + o)] += partial[weight_count() + o];
        }
    }

    index_t out_channels_, kernel_, stride_;
    padding pad_;
    index_t in_channels_ = 0, height_ = 0, width_ = 0;
    index_t out_h_ = 0, out_w_ = 0, pad_top_ = 0, pad_left_ = 0;
    shape input_item_, output_item_;
    std::span<T> weight_, bias_;
    std::span<T> grads_;  // [dweight | dbias], the layout of the partials too
};

}  // namespace nnmark
