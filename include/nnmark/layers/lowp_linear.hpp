// lowp_linear<Dot>: a trained conv2d or dense layer run for inference in lower
// precision (int8_dot or bf16_dot, kernels/lowp_gemm.hpp), float in and float out, so
// that it takes the place of the float layer in a sequential model (model/low_precision.hpp
// makes such models) and the layers around it (relu, maxpool2d, flatten) stay as they
// are.
//
// Per call: the input is encoded (kernels/quantization.hpp: int8 with the affine u8
// code a calibration pass chose for this layer's input, bf16 by rounding), the product
// runs in the lower precision, and each output is
//   y[o] = scale[o] * acc[o] + shift[o]      (then max(0, y) when a ReLU follows)
// with, for int8, scale[o] = input scale * weight scale[o] and
// shift[o] = bias[o] - scale[o] * zero_point * sum_k w_q[o, k] (quantization.hpp); for
// bf16 scale 1 and shift = bias (the accumulators are float).
// - conv2d (NCHW, square kernel, stride, valid or same padding, as layers/conv2d.hpp):
//   each image is encoded once, bordered by the padding (code of 0) and with channels
//   padded to the dot group (4 or 2), in the layout [channel group][row][column][group]:
//   a group is `group` channels of one pixel, and the same group of consecutive pixels
//   lies side by side, across rows too. k runs over the window's row, column and
//   channel group. With stride 1 the product's columns are all positions of the
//   bordered image, 16 per vector load, with no packing; the positions whose windows
//   wrap past a row's end are computed and dropped ((k - 1) / padded width of the
//   work: 8-20% for the paper's layers, where gathering every window into packed panels
//   cost as much as the products). Other strides gather the windows (lowp_product).
//   Images are split into blocks, one per thread, as conv2d splits them.
// - dense: the batch is encoded once; columns are samples, split among threads.
// Inference only: backward throws. The weights are packed once at construction; the
// encoded inputs live in thread_local buffers that only grow, so a const layer serves
// many threads.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/parallel.hpp"
#include "nnmark/kernels/lowp_gemm.hpp"
#include "nnmark/kernels/quantization.hpp"
#include "nnmark/layers/layer.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace nnmark {

// The geometry of the float layer replaced: a convolution's window, or none (dense).
struct lowp_geometry {
    bool convolution = false;
    index_t kernel = 1, stride = 1;
};

template <class Dot>
class lowp_linear final : public layer<float> {
public:
    using code = std::conditional_t<std::is_same_v<Dot, int8_dot>, affine_u8, bf16_code>;
    using input = typename Dot::input;

    // `kind` and `config` of the float layer; `weight` in its layout (conv OIHW, dense
    // [out, in]), `bias` [out]; input_item and output_item its shapes; `input_code` how
    // its input is encoded (for int8, from calibration).
    lowp_linear(std::string kind, layer_config config, lowp_geometry geometry, const shape& input_item,
                const shape& output_item, std::span<const float> weight, std::span<const float> bias,
                code input_code)
        : kind_(std::move(kind) + (std::is_same_v<Dot, int8_dot> ? "_int8" : "_bf16")),
          config_(std::move(config)),
          geometry_(geometry),
          input_item_(input_item),
          output_item_(output_item),
          input_code_(input_code) {
        const index_t rows = output_item[0];
        const index_t fan_in = static_cast<index_t>(weight.size()) / rows;
        if (geometry.convolution) plan_windows();
        const index_t k = geometry.convolution ? geometry.kernel * geometry.kernel * padded_channels_ : fan_in;
        // The weights in the product's k order, then encoded.
        std::vector<float> ordered(static_cast<std::size_t>(rows * k), 0.0f);
        for (index_t o = 0; o < rows; ++o)
            for (index_t i = 0; i < fan_in; ++i)
                ordered[static_cast<std::size_t>(o * k + k_index(i))] = weight[static_cast<std::size_t>(o * fan_in + i)];
        std::vector<typename Dot::weight> codes(ordered.size());
        scale_.resize(static_cast<std::size_t>(rows));
        shift_.assign(bias.begin(), bias.end());
        for (index_t o = 0; o < rows; ++o) {
            const std::span<const float> row(ordered.data() + o * k, static_cast<std::size_t>(k));
            typename Dot::weight* row_codes = codes.data() + o * k;
            auto& scale = scale_[static_cast<std::size_t>(o)];
            if constexpr (std::is_same_v<Dot, int8_dot>) {
                const float weight_scale = symmetric_s8_scale(row);
                long long code_sum = 0;
                for (index_t p = 0; p < k; ++p) code_sum += row_codes[p] = encode_s8(row[static_cast<std::size_t>(p)], weight_scale);
                scale = input_code.scale * weight_scale;
                shift_[static_cast<std::size_t>(o)] -= scale * static_cast<float>(input_code.zero_point * code_sum);
            } else {
                for (index_t p = 0; p < k; ++p) row_codes[p] = bf16_from_float(row[static_cast<std::size_t>(p)]);
                scale = 1.0f;
            }
        }
        weights_ = lowp_weights<Dot>(rows, k, codes.data(), k);
        if (!geometry.convolution)
            for (index_t q = 0; q < weights_.groups(); ++q) group_offsets_.push_back(q * Dot::group);
    }

    std::string kind() const override { return kind_; }
    layer_config config() const override { return config_; }
    shape configure(const shape& input_item) override {
        if (!(input_item == input_item_))
            throw shape_error(kind_ + ": made for input items " + input_item_.str() + ", got " + input_item.str());
        return output_item_;
    }

    void infer(const tensor<float>& x, tensor<float>& y, workspace<float>&) const override { forward(x, y, false); }
    bool infer_then_relu(const tensor<float>& x, tensor<float>& y, workspace<float>&) const override {
        forward(x, y, true);
        return true;
    }
    void backward(const tensor<float>&, const tensor<float>&, const tensor<float>&, tensor<float>&,
                  const tensor<float>&, backward_context<float>&) override {
        throw error(kind_ + ": a lower-precision layer is for inference only; train the float model");
    }

    // Multiply-adds per thread below which one more thread costs more than it saves
    // (as conv2d's grain, in multiply-adds of the float layer).
    static constexpr long long parallel_grain = 1LL << 18;

private:
    // Where each tile of the product lands: y at out[row * row_step + col * col_step],
    // scaled and shifted per row, through a ReLU when asked.
    struct dequantizing_sink {
        const float* scale;
        const float* shift;
        float* out;
        index_t row_step, col_step;
        bool relu;

        void operator()(index_t row0, index_t col0, index_t rows, index_t cols,
                        const typename Dot::accumulator* tile) const {
            for (index_t r = 0; r < rows; ++r) {
                const index_t o = row0 + r;
                const float s = scale[o], t = shift[o];
                float* to = out + o * row_step + col0 * col_step;
                const typename Dot::accumulator* from = tile + r * detail::lowp::nr;
                const auto value = [&](index_t c) {
                    const float v = static_cast<float>(from[c]) * s + t;
                    return relu ? std::max(v, 0.0f) : v;
                };
                if (col_step == 1)  // a convolution's image: contiguous, so the loop vectorizes
                    for (index_t c = 0; c < cols; ++c) to[c] = value(c);
                else
                    for (index_t c = 0; c < cols; ++c) to[c * col_step] = value(c);
            }
        }
    };

    // A stride-1 convolution's product runs over every position p = row * padded_w + column
    // of the bordered image (the windows of consecutive positions are side by side, across
    // rows too); the positions whose window wraps past the row's end (column >= out_w) are
    // dropped, the rest go to `to` as output pixel row * out_w + column.
    struct bordered_rows_sink {
        dequantizing_sink to;
        index_t padded_w, out_w;

        void operator()(index_t row0, index_t col0, index_t rows, index_t cols,
                        const typename Dot::accumulator* tile) const {
            for (index_t p = col0; p < col0 + cols;) {
                const index_t row = p / padded_w, column = p % padded_w;
                const index_t run = std::min(col0 + cols - p, padded_w - column);
                if (column < out_w) to(row0, row * out_w + column, rows, std::min(run, out_w - column), tile + (p - col0));
                p += run;
            }
        }
    };

    // The bordered image a convolution reads, [channel group][row][column][group], and
    // each group's offset in it relative to the window's first pixel.
    void plan_windows() {
        const index_t k = geometry_.kernel, s = geometry_.stride;
        channels_ = input_item_[0];
        padded_channels_ = (channels_ + Dot::group - 1) / Dot::group * Dot::group;
        const auto pad_before = [&](index_t in, index_t out) { return std::max<index_t>((out - 1) * s + k - in, 0) / 2; };
        pad_top_ = pad_before(input_item_[1], output_item_[1]);
        pad_left_ = pad_before(input_item_[2], output_item_[2]);
        // Rows and columns of the bordered image: enough for every window.
        padded_h_ = std::max(input_item_[1] + pad_top_, (output_item_[1] - 1) * s + k);
        padded_w_ = std::max(input_item_[2] + pad_left_, (output_item_[2] - 1) * s + k);
        const index_t channel_groups = padded_channels_ / Dot::group;
        for (index_t ki = 0; ki < k; ++ki)
            for (index_t kj = 0; kj < k; ++kj)
                for (index_t cg = 0; cg < channel_groups; ++cg)
                    group_offsets_.push_back(((cg * padded_h_ + ki) * padded_w_ + kj) * Dot::group);
    }

    // Position in the product's k order of element i of a weight row in the float
    // layer's layout (conv: i = (c * k + ki) * k + kj).
    index_t k_index(index_t i) const {
        if (!geometry_.convolution) return i;
        const index_t k = geometry_.kernel;
        const index_t c = i / (k * k), ki = i / k % k, kj = i % k;
        return (ki * k + kj) * padded_channels_ + c;
    }

    void forward(const tensor<float>& x, tensor<float>& y, bool relu) const {
        expect_input(x, input_item_, kind_);
        const index_t items = x.batch();
        y.resize(output_item_.prepend(items));
        const long long work = static_cast<long long>(items) * output_item_.count() * input_item_.count() /
                               (geometry_.convolution ? input_item_[1] * input_item_[2] : 1) *
                               geometry_.kernel * geometry_.kernel;
        const int blocks = static_cast<int>(std::min<long long>(threads_for(work, parallel_grain), std::max<index_t>(items, 1)));
        if (geometry_.convolution) convolve(x, y, relu, blocks);
        else multiply_samples(x, y, relu, blocks);
    }

    void convolve(const tensor<float>& x, tensor<float>& y, bool relu, int blocks) const {
        constexpr index_t g = Dot::group;
        const index_t pixels = output_item_[1] * output_item_[2];
        const index_t out_h = output_item_[1], out_w = output_item_[2], stride = geometry_.stride;
        const index_t height = input_item_[1], width = input_item_[2];
        for_each_chunk(x.batch(), blocks, [&](int, index_t begin, index_t end) {
            thread_local detail::lowp::buffer<input> image, codes, zero_row;
            // The tail: whole vectors are read up to 15 columns past a row's last window.
            const auto image_size =
                static_cast<std::size_t>(padded_h_ * padded_w_ * padded_channels_ + detail::lowp::nr * g);
            image.resize(std::max(image.size(), image_size));
            codes.resize(std::max(codes.size(), static_cast<std::size_t>(input_item_.count())));
            zero_row.assign(static_cast<std::size_t>(width), input_code_.zero_code());
            for (index_t n = begin; n < end; ++n) {
                // Encoded in one pass over the image, then spread into the layout, bordered
                // with the code of 0.
                input_code_.encode(x.item(n), codes.data());
                std::fill_n(image.begin(), image_size, input_code_.zero_code());
                // Each group's `group` channel rows interleaved into one 32-bit word per
                // pixel (a form that vectorizes, where a byte store per value did not);
                // channels past the last one read as the code of 0 (their weights are 0).
                const input* channel_rows[g];
                for (index_t cg = 0; cg < padded_channels_ / g; ++cg)
                    for (index_t i = 0; i < height; ++i) {
                        for (index_t e = 0; e < g; ++e) {
                            const index_t c = cg * g + e;
                            channel_rows[e] = c < channels_ ? codes.data() + (c * height + i) * width : zero_row.data();
                        }
                        input* to = image.data() + ((cg * padded_h_ + i + pad_top_) * padded_w_ + pad_left_) * g;
                        for (index_t j = 0; j < width; ++j) {
                            std::uint32_t word = 0;
                            for (index_t e = 0; e < g; ++e)
                                word |= static_cast<std::uint32_t>(channel_rows[e][j]) << (e * 8 * static_cast<index_t>(sizeof(input)));
                            std::memcpy(to + j * g, &word, sizeof word);  // little-endian: channel e at element e
                        }
                    }
                const dequantizing_sink sink{scale_.data(), shift_.data(), y.item(n).data(), pixels, 1, relu};
                if (stride == 1) {
                    // Windows of consecutive positions are side by side in this layout: no packing.
                    const bordered_rows_sink rows_sink{sink, padded_w_, out_w};
                    lowp_product_in_place(weights_, image.data(), group_offsets_, (out_h - 1) * padded_w_ + out_w, 0,
                                          rows_sink);
                } else {
                    const auto column_offset = [&](index_t j) { return (j / out_w * padded_w_ + j % out_w) * stride * g; };
                    lowp_product(weights_, image.data(), column_offset, group_offsets_, pixels, sink);
                }
            }
        });
    }

    void multiply_samples(const tensor<float>& x, tensor<float>& y, bool relu, int blocks) const {
        const index_t features = input_item_[0], outputs = output_item_[0];
        thread_local detail::lowp::buffer<input> codes;
        codes.resize(std::max(codes.size(), static_cast<std::size_t>(x.size())));
        input_code_.encode(std::span<const float>(x.data(), static_cast<std::size_t>(x.size())), codes.data());
        const input* encoded = codes.data();
        for_each_chunk(x.batch(), blocks, [&](int, index_t begin, index_t end) {
            const dequantizing_sink sink{scale_.data(), shift_.data(), y.data() + begin * outputs, 1, outputs, relu};
            lowp_product(weights_, encoded + begin * features, [features](index_t j) { return j * features; },
                         group_offsets_, end - begin, sink);
        });
    }

    std::string kind_;
    layer_config config_;
    lowp_geometry geometry_;
    shape input_item_, output_item_;
    code input_code_;
    lowp_weights<Dot> weights_;
    std::vector<float> scale_, shift_;
    std::vector<index_t> group_offsets_;
    index_t channels_ = 0, padded_channels_ = 0, pad_top_ = 0, pad_left_ = 0, padded_h_ = 0, padded_w_ = 0;
};

}  // namespace nnmark
