// --precision and --calibration-images: the arithmetic a command's model answers in
// (model/low_precision.hpp), shared by eval, verify, serve and attack transform.
#pragma once

#include "cli.hpp"

#include "nnmark/core/precision.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/sequential.hpp"

#include <functional>
#include <string>

namespace nnmark::cli {

struct precision_options {
    std::string name = "fp32";
    index_t calibration_images = 1000;

    // --precision, and --calibration-images saying whose images `source` describes.
    void add_to(CLI::App& app, const std::string& source = "the dataset's training split (the owner's own data)");
    precision value() const { return parse_precision(name); }
};

// `model` at o's precision: itself for fp32; for int8, calibrated on o.calibration_images
// images of what `images()` returns (called only then, so that fp32 and bf16 load nothing).
sequential<float> at_chosen_precision(sequential<float> model, const precision_options& o,
                                      const std::function<dataset()>& images);

}  // namespace nnmark::cli
