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
//   3x3 windows (all of the paper's) run all three by Winograd's minimal filtering
//   instead of the direct product (kernels/winograd.hpp): 2.25-4x fewer multiply-adds,
//   with the weight gradient summed over the block's images in the transformed
//   domain and turned into windows once per block. The results differ from the direct
//   sums by rounding only.
// - otherwise: im2col. out [Cout x Ho*Wo] = weight [Cout x K] * columns
//   [K x Ho*Wo] with K = Cin*k*k and columns = im2col(image) (kernels/im2col.hpp);
//     dL/dx      = col2im(weight^T * g)          WRITTEN into dx
//     dL/dweight += g * columns^T               ADDED
//   The weight gradient is computed transposed, as columns * g^T [K x Cout]: gemm then
//   packs (transposes) g, Cout x Ho*Wo, instead of columns, K x Ho*Wo.
// Either way dL/dbias += the row sums of g, dx is written when ctx.input_grad and the
// parameter gradients are added when ctx.param_grads. The lowerings meet the same
// tests (forward against the direct definition, numerical gradients in double).
//
// Threads, forward: the batch is cut into units, shared among the threads
// (batch_split, share_units). A unit is a whole image when the images divide evenly
// among the threads or are many, else a part of one: a run of Winograd tiles or of
// output rows (nhwc_product::parts; output rows when unrolled), or, when such a run
// would be too short a GEMM, a run of output channels (channel-last, whole panels of
// the packed weights; batch_split::by_channels). So a single image keeps every thread
// busy.
// A thread copies channel-last (or unrolls) only the input rows its part reads, into
// its own slice of the workspace, and computes the part's outputs by the same
// operations as the whole image's: the outputs are bit-identical however the batch is
// cut, so 2 threads give 1 thread's results bit for bit. Before that the threads
// prepare the packed (transformed) weights together, by input channels, or by the
// panels of the channel runs. Both steps run by share_chunks (core/parallel.hpp): the
// calling thread takes units too and never waits for a thread that has not begun, as
// an OpenMP region's barrier would on a busy machine; so which thread computes a unit
// varies, which the results do not depend on.
// Backward: images are split into contiguous blocks, one per thread. Each block uses
// its own slice of the workspace for its image copies or columns and accumulates its
// own partial parameter gradient ([dweight | dbias]); the partials are then added to
// the bound gradient in block order. So the gradients depend on the thread count but
// never on scheduling: same seed + same thread count = bit-identical gradients.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/parallel.hpp"
#include "nnmark/kernels/conv_nhwc.hpp"
#include "nnmark/kernels/gemm.hpp"
#include "nnmark/kernels/im2col.hpp"
#include "nnmark/kernels/positive_part.hpp"
#include "nnmark/kernels/winograd.hpp"
#include "nnmark/layers/initializers.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
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
        backward_pass(x, dy, dx, ctx, false);
    }

    // The ReLU before the convolution (x is its output): each image's input gradient
    // goes through it while still in cache.
    bool backward_through_relu(const tensor<T>& x, const tensor<T>&, const tensor<T>& dy, tensor<T>& dx,
                               const tensor<T>&, backward_context<T>& ctx) override {
        backward_pass(x, dy, dx, ctx, true);
        return true;
    }

    // Work (multiply-adds, counted as the direct product) below which one more thread
    // costs more than it saves: about a microsecond, a few times what handing a step to
    // a helper costs (share_chunks), so that the first layer of paper-mnist (2^17.6) at
    // batch 1 uses two threads. Public so that tests pick sizes that take
    // the multi-block path.
    static constexpr long long parallel_grain = 1LL << 16;

private:
    void backward_pass(const tensor<T>& x, const tensor<T>& dy, tensor<T>& dx, backward_context<T>& ctx, bool relu) {
        expect_input(x, input_item_, kind());
        const index_t images = x.batch();
        expect_shape(dy, output_item_.prepend(images), "conv2d backward (gradient of the output)");
        if (ctx.input_grad) dx.resize(x.shape());
        if (!ctx.input_grad && !ctx.param_grads) return;

        const int blocks = blocks_for(images);
        const index_t partial_stride = detail::cache_line_padded<T>(static_cast<index_t>(grads_.size()));
        T* partials = ctx.param_grads ? ctx.scratch.get(partial_stride * blocks, 1).data() : nullptr;
        if (channel_last()) backward_channel_last(x, dy, dx, ctx, blocks, partials, partial_stride, relu);
        else backward_unrolled(x, dy, dx, ctx, blocks, partials, partial_stride, relu);
        if (ctx.param_grads) add_partials_in_block_order(partials, partial_stride, blocks);
    }

    // grad = relu_gradient(image, grad), elementwise over one image: the backward of the
    // ReLU whose output the image is.
    static void through_relu(std::span<const T> image, std::span<T> grad) {
        const T* x = image.data();
        T* g = grad.data();
        const auto count = static_cast<index_t>(grad.size());
#pragma omp simd
        for (index_t i = 0; i < count; ++i) g[i] = relu_gradient(x[i], g[i]);
    }

    // How one spatial axis is padded and how many outputs it gives.
    struct axis_plan {
        index_t out;
        index_t pad_before;
    };

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

    // One valid stride-1 convolution of a channel-last image, as the forward pass (the
    // padded input by the weights) and the input gradient (the output gradient,
    // bordered by k-1-pad, by the flipped weights) run it: by Winograd's minimal
    // filtering for 3x3 windows (kernels/winograd.hpp, 2.25-4x fewer multiply-adds), else by the
    // direct product of kernels/conv_nhwc.hpp. A block's slice of scratch holds the
    // channel-last image and, for Winograd, the transformed tiles.
    struct nhwc_product {
        index_t in_ch, out_ch, out_h, out_w, k;
        conv_role role;

        bool winograd() const { return k == 3; }
        winograd_tile tile() const { return winograd_tile::for_output(out_h, out_w); }
        index_t in_h() const { return winograd() ? tile().input_extent(out_h) : out_h + k - 1; }
        index_t in_w() const { return winograd() ? tile().input_extent(out_w) : out_w + k - 1; }
        index_t image_size() const {
            return detail::cache_line_padded<T>(channel_last_size<T>(in_h(), in_w(), in_ch));
        }
        index_t slice_size() const {
            const index_t tiles = winograd() ? winograd_scratch_size<T>(tile(), out_h, out_w, in_ch, out_ch) : 0;
            return image_size() + detail::cache_line_padded<T>(tiles);
        }
        index_t weights_size() const {
            return winograd() ? winograd_weights_size<T>(tile(), in_ch, out_ch)
                              : conv_packed_size<T>(out_ch, k * k * in_ch);
        }
        // The weights as run() reads them, from the layer's [layer_out][layer_in][k][k]:
        // the rows of the product's input channels `rows` (all of them: {0, in_ch}) in
        // the columns of its output channels `columns` (all: {0, out_ch}).
        void prepare(const T* weight, index_t layer_out, index_t layer_in, T* packed, index_range rows,
                     index_range columns) const {
            if (winograd()) winograd_weights(tile(), weight, layer_out, layer_in, role, packed, rows, columns);
            else pack_conv_weights(weight, layer_out, layer_in, k, role, packed, rows, columns);
        }
        void prepare(const T* weight, index_t layer_out, index_t layer_in, T* packed) const {
            prepare(weight, layer_out, layer_in, packed, {0, in_ch}, {0, out_ch});
        }
        // The parts an image's output divides into, for threads to share it: Winograd
        // tiles, else output rows. input_rows(part): the rows of the channel-last image
        // that the part reads.
        index_t parts() const { return winograd() ? tile().tiles(out_h, out_w) : out_h; }
        index_range input_rows(index_range part) const {
            return winograd() ? tile().input_rows(out_w, part) : index_range{part.first, part.last + k - 1};
        }
        // The rows of the image's GEMM: tiles, or output pixels.
        index_t gemm_rows() const { return winograd() ? parts() : out_h * out_w; }
        // The output channels of `piece` of `pieces` runs of whole NR-column panels.
        index_range channels(index_t piece, index_t pieces) const {
            constexpr index_t nr = detail::packed_gemm::tile<T>::nr;
            const index_range panels = chunk_of((out_ch + nr - 1) / nr, static_cast<int>(piece), static_cast<int>(pieces));
            return {panels.first * nr, std::min(panels.last * nr, out_ch)};
        }
        // The parts `part` of out [out_ch][out_h][out_w] in output channels `channels`
        // (channels.first a multiple of NR) from the image at the start of `slice`.
        void run(T* slice, const T* packed, const T* bias, T* out, bool relu, index_range part,
                 index_range channels) const {
            if (winograd())
                return conv3x3_winograd(tile(), slice, out_h, out_w, in_ch, packed, out_ch, bias, out, relu,
                                        slice + image_size(), part, channels);
            const index_t c = channels.first;
            conv_forward_nhwc(slice, in_h(), in_w(), in_ch, k, packed + c * k * k * in_ch, channels.size(),
                              bias ? bias + c : bias, out + c * out_h * out_w, relu, part);
        }
        void run(T* slice, const T* packed, const T* bias, T* out, bool relu) const {
            run(slice, packed, bias, out, relu, {0, parts()}, {0, out_ch});
        }
    };

    nhwc_product forward_product() const {
        return {in_channels_, out_channels_, out_h_, out_w_, kernel_, conv_role::forward};
    }
    nhwc_product input_grad_product() const {
        return {out_channels_, in_channels_, height_, width_, kernel_, conv_role::input_gradient};
    }

    // How forward() cuts a batch for `threads` threads: into units, unit u being part
    // u % pieces of image u / pieces (chunk_of the image's output parts). Whole images
    // (pieces 1) when they split evenly or are many; else, as for a single image, each
    // image in parts, so that every thread can have the same share: a batch of 3 on 2
    // threads is 6 half images, 3 for each.
    struct batch_split {
        int threads;
        index_t pieces;

        static batch_split of(index_t images, int threads) {
            const bool whole_images = images % threads == 0 || images >= 4 * threads;
            return {threads, whole_images ? 1 : threads / std::gcd(images, static_cast<index_t>(threads))};
        }
        index_t image(index_t unit) const { return unit / pieces; }
        index_range part(index_t unit, index_t parts) const {
            return chunk_of(parts, static_cast<int>(unit % pieces), static_cast<int>(pieces));
        }
        // Whether the channel-last units cut an image by output channels rather than by
        // tiles (rows): when a share of the tiles would be a GEMM of fewer rows than two
        // register tiles (its B loads then cost more than its products; paper-cifar10's
        // 64 -> 128 layer of 9 tiles took 1.5x as long in two halves), and there are
        // panels enough. Each thread then prepares and reads only its own panels of the
        // weights, at the price of each copying the whole image and transforming it.
        bool by_channels(const nhwc_product& product) const {
            constexpr index_t mr = detail::packed_gemm::tile<T>::mr, nr = detail::packed_gemm::tile<T>::nr;
            return pieces > 1 && product.gemm_rows() < 2 * mr * pieces && (product.out_ch + nr - 1) / nr >= pieces;
        }
    };

    // y = the convolution of x, through a ReLU when `relu`.
    void forward(const tensor<T>& x, tensor<T>& y, workspace<T>& scratch, bool relu) const {
        expect_input(x, input_item_, kind());
        const index_t images = x.batch();
        y.resize(output_item_.prepend(images));
        const auto split = batch_split::of(images, threads_for(work(images), parallel_grain));
        const index_t units = images * split.pieces;
        if (channel_last()) {
            const nhwc_product product = forward_product();
            const index_t slice = product.slice_size();
            T* slices = scratch.get(slice * split.threads, 0).data();
            T* packed = scratch.get(product.weights_size(), 1).data();
            // The threads prepare the weights together (by input channels, or each the
            // panels its piece convolves by), then convolve the units. A single image cut
            // by channels has one unit per run of panels: each prepares its own panels,
            // and the threads need not meet in between.
            const bool by_channels = split.by_channels(product), prepare_in_units = by_channels && images == 1;
            if (by_channels && !prepare_in_units)
                share_chunks(split.pieces, split.pieces, split.threads, [&](int, index_t first, index_t last) {
                    for (index_t piece = first; piece < last; ++piece)
                        product.prepare(weight_.data(), out_channels_, in_channels_, packed, {0, in_channels_},
                                        product.channels(piece, split.pieces));
                });
            else if (!by_channels)
                share_chunks(in_channels_, split.threads * index_t(4), split.threads,
                             [&](int, index_t first, index_t last) {
                                 product.prepare(weight_.data(), out_channels_, in_channels_, packed, {first, last},
                                                 {0, out_channels_});
                             });
            share_units(units, split.threads, [&](int slot, index_t u) {
                const index_range part = by_channels ? index_range{0, product.parts()} : split.part(u, product.parts());
                const index_range channels = by_channels ? product.channels(u % split.pieces, split.pieces)
                                                         : index_range{0, out_channels_};
                if (part.size() == 0 || channels.size() == 0) return;
                if (prepare_in_units)
                    product.prepare(weight_.data(), out_channels_, in_channels_, packed, {0, in_channels_}, channels);
                T* image = slices + slot * slice;
                const index_t n = split.image(u);
                to_channel_last_rows(x.item(n).data(), in_channels_, height_, width_, pad_top_, pad_left_,
                                     product.in_w(), product.input_rows(part), image);
                product.run(image, packed, bias_.data(), y.item(n).data(), relu, part, channels);
            });
            return;
        }
        // Unrolled, a part is a run of output channels, the GEMM's rows, when each has at
        // least one register tile of them (paper-mnist's first layer: two halves of its
        // 32 channels took 1.15x the whole's time, two halves of its pixels 1.3x; each
        // unrolls the whole image, a small share of the work when windows are small),
        // else a run of output rows.
        constexpr index_t mr = detail::packed_gemm::tile<T>::mr;
        const bool by_channels = split.pieces > 1 && out_channels_ >= mr * split.pieces;
        const index_t column_stride = detail::cache_line_padded<T>(column_count());
        T* columns = scratch.get(column_stride * split.threads, 0).data();
        share_units(units, split.threads, [&](int slot, index_t u) {
            const index_range rows = by_channels ? index_range{0, out_h_} : split.part(u, out_h_);
            const index_range channels = by_channels ? split.part(u, out_channels_) : index_range{0, out_channels_};
            if (rows.size() > 0 && channels.size() > 0)
                forward_rows(x.item(split.image(u)).data(), y.item(split.image(u)).data(),
                             columns + slot * column_stride, rows, channels, relu);
        });
    }

    // body(slot, unit) for every unit, on `threads` threads (share_chunks): a unit at a
    // time while there are few, so that a thread that is late leaves whole parts of
    // images to the others; in runs of units when there are many.
    template <class Body>
    static void share_units(index_t units, int threads, Body&& body) {
        share_chunks(units, std::min<index_t>(units, index_t(threads) * 8), threads,
                     [&](int slot, index_t first, index_t last) {
                         for (index_t u = first; u < last; ++u) body(slot, u);
                     });
    }

    // Per image: dweight (window-major, [Cout][k*k*Cin]) and dbias into the block's
    // partial; dx = the valid correlation of the bordered gradient with the flipped
    // weights. Why the border works: output pixel oh reads padded rows oh..oh+k-1, so
    // input row h (padded row h + pad_top) receives from oh = h + pad_top - ki; with the
    // gradient shifted down by k-1-pad_top, that is bordered row h + (k-1-ki).
    void backward_channel_last(const tensor<T>& x, const tensor<T>& dy, tensor<T>& dx, backward_context<T>& ctx,
                               int blocks, T* partials, index_t partial_stride, bool relu) const {
        const index_t weight_slice = weight_grad_slice_size();
        const nhwc_product product = input_grad_product();
        T* weight_slices = ctx.param_grads ? ctx.scratch.get(weight_slice * blocks, 0).data() : nullptr;
        T* bordered = ctx.input_grad ? ctx.scratch.get(product.slice_size() * blocks, 2).data() : nullptr;
        T* flipped = nullptr;
        if (ctx.input_grad) {
            flipped = ctx.scratch.get(product.weights_size(), 3).data();
            product.prepare(weight_.data(), out_channels_, in_channels_, flipped);
        }
        const index_t pixels = out_pixels();
        for_each_chunk(x.batch(), blocks, [&](int b, index_t first, index_t last) {
            T* partial = partials ? partials + b * partial_stride : nullptr;
            T* slice = partial ? weight_slices + b * weight_slice : nullptr;
            if (partial) {
                std::fill_n(partial, grads_.size(), T(0));
                start_weight_grad(slice);
            }
            for (index_t n = first; n < last; ++n) {
                const T* grad_out = dy.item(n).data();
                if (partial) {
                    add_weight_grad_image(x.item(n).data(), grad_out, slice, partial);
                    add_row_sums(grad_out, out_channels_, pixels, partial + weight_count());
                }
                if (ctx.input_grad) {
                    T* grad_image = bordered + b * product.slice_size();
                    to_channel_last(grad_out, out_channels_, out_h_, out_w_, kernel_ - 1 - pad_top_,
                                    kernel_ - 1 - pad_left_, product.in_h(), product.in_w(), grad_image);
                    product.run(grad_image, flipped, static_cast<const T*>(nullptr), dx.item(n).data(), false);
                    if (relu) through_relu(x.item(n), dx.item(n));
                }
            }
            if (partial) finish_weight_grad(slice, partial);
        });
    }

    // The weight gradient on the channel-last path, image by image into a block's
    // partial (window-major). For 3x3 windows by Winograd, with the forward pass's
    // tile (kernels/winograd.hpp): the block's images are summed in the transformed
    // domain and turned into windows once, at the end of the block. Otherwise by
    // conv_weight_grad_nhwc. A block's slice of scratch holds the input padded as the
    // forward pass reads it (with, for Winograd, the transform scratch), then for
    // Winograd the output gradient channel-last over whole tiles and the transformed sum.
    index_t weight_grad_slice_size() const {
        const nhwc_product forward = forward_product();
        if (!forward.winograd()) return forward.slice_size();
        const winograd_tile tile = forward.tile();
        return forward.slice_size() + weight_grad_tiles_size() +
               detail::cache_line_padded<T>(winograd_weight_grad_size<T>(tile, in_channels_, out_channels_));
    }
    index_t weight_grad_tiles_size() const {
        const winograd_tile tile = forward_product().tile();
        return detail::cache_line_padded<T>(
            channel_last_size<T>(tile.covered(out_h_), tile.covered(out_w_), out_channels_));
    }
    T* weight_grad_sum(T* slice) const { return slice + forward_product().slice_size() + weight_grad_tiles_size(); }

    void start_weight_grad(T* slice) const {
        if (forward_product().winograd())
            std::fill_n(weight_grad_sum(slice), winograd_weight_grad_size<T>(forward_product().tile(), in_channels_,
                                                                               out_channels_),
                        T(0));
    }

    void add_weight_grad_image(const T* image, const T* grad_out, T* slice, T* partial) const {
        const nhwc_product forward = forward_product();
        to_channel_last(image, in_channels_, height_, width_, pad_top_, pad_left_, forward.in_h(), forward.in_w(),
                        slice);
        if (!forward.winograd())
            return conv_weight_grad_nhwc(slice, forward.in_h(), forward.in_w(), in_channels_, kernel_, grad_out,
                                         out_channels_, partial);
        const winograd_tile tile = forward.tile();
        T* grad_tiles = slice + forward.slice_size();
        to_channel_last(grad_out, out_channels_, out_h_, out_w_, 0, 0, tile.covered(out_h_), tile.covered(out_w_),
                        grad_tiles);
        winograd_weight_grad(tile, static_cast<const T*>(slice), static_cast<const T*>(grad_tiles), out_h_, out_w_,
                             in_channels_, out_channels_, weight_grad_sum(slice), slice + forward.image_size());
    }

    void finish_weight_grad(T* slice, T* partial) const {
        if (forward_product().winograd())
            winograd_add_weight_grad(forward_product().tile(), static_cast<const T*>(weight_grad_sum(slice)),
                                     in_channels_, out_channels_, partial);
    }

    void backward_unrolled(const tensor<T>& x, const tensor<T>& dy, tensor<T>& dx, backward_context<T>& ctx,
                           int blocks, T* partials, index_t partial_stride, bool relu) const {
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
                if (!ctx.input_grad) continue;
                input_grad_image(grad_out, dx.item(n).data(), block_columns);
                if (relu) through_relu(x.item(n), dx.item(n));
            }
        });
    }

    // Multiply-adds of a pass over `images` images, counted as the direct product.
    long long work(index_t images) const { return static_cast<long long>(images) * weight_count() * out_pixels(); }

    // Backward keeps each image on one thread: blocks of whole images.
    int blocks_for(index_t images) const {
        return static_cast<int>(std::max<index_t>(1, std::min<index_t>(threads_for(work(images), parallel_grain), images)));
    }

    // The columns of output rows `rows` (im2col of the image as if it started at the
    // first input row they read: the padding above it moves up by as many rows).
    void unroll(const T* image, T* columns, index_range rows) const {
        im2col(image, in_channels_, height_, width_, kernel_, stride_, pad_top_ - rows.first * stride_, pad_left_,
               rows.size(), out_w_, columns);
    }

    // Output rows `rows` of channels `channels` of out = bias (broadcast over pixels) +
    // weight * columns, through a ReLU when `relu`, each channel's run of pixels while it
    // is in cache.
    void forward_rows(const T* image, T* out, T* columns, index_range rows, index_range channels, bool relu) const {
        unroll(image, columns, rows);
        const index_t pixels = out_pixels(), first = rows.first * out_w_, count = rows.size() * out_w_;
        for (index_t o = channels.first; o < channels.last; ++o)
            std::fill_n(out + o * pixels + first, count, bias_[static_cast<std::size_t>(o)]);
        gemm(false, false, channels.size(), count, patch_size(), T(1), weight_.data() + channels.first * patch_size(),
             patch_size(), columns, count, T(1), out + channels.first * pixels + first, pixels);
        if (!relu) return;
        for (index_t o = channels.first; o < channels.last; ++o) {
            T* v = out + o * pixels + first;
#pragma omp simd
            for (index_t i = 0; i < count; ++i) v[i] = positive_part(v[i]);
        }
    }

    // partial = [dweight^T | dbias] of this block: dweight^T += columns * g^T,
    // dbias += row sums of g.
    void accumulate_param_grads(const T* image, const T* grad_out, T* columns, T* partial) const {
        unroll(image, columns, {0, out_h_});
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
