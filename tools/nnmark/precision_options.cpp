#include "precision_options.hpp"

#include "nnmark/model/low_precision.hpp"


namespace nnmark::cli {

void precision_options::add_to(CLI::App& app, const std::string& source) {
    app.add_option("--precision", name,
                   "Arithmetic of the model's inference: fp32 (as trained), bf16, or int8 (post-training "
                   "calibration on --calibration-images images of " + source + ")")
        ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
        ->capture_default_str();
    app.add_option("--calibration-images", calibration_images,
                   "With --precision int8: images the activation ranges are measured on")
        ->check(CLI::Range(index_t(1), index_t(1) << 20))
        ->capture_default_str();
}

sequential<float> at_chosen_precision(sequential<float> model, const precision_options& o,
                                      const std::function<dataset()>& images) {
    const precision p = o.value();
    if (p == precision::fp32) return model;
    tensor<float> calibration;
    if (p == precision::int8) {
        const dataset source = images();
        to_float(source, evenly_spaced_indices(source.size(), o.calibration_images), calibration);
    }
    return at_precision(model, p, calibration);
}

}  // namespace nnmark::cli
