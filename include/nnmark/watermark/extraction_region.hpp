// extraction_region: a watermark that a copy trained on the API's labels inherits.
//
// Why. Trigger-set watermarks (Zhang et al.; Adi et al.) live where the thief never
// queries: stamped, noisy or foreign images, or a hundred isolated training images. A
// surrogate trained on the victim's labels for ordinary inputs (Tramer et al. 2016) never
// sees them and does not learn them (reproduce's distillation rows). DAWN (Szyller et al.,
// ACM MM 2021; serve/dawn_answers.hpp) answers a keyed share of queries wrongly in the
// API; this is the same idea moved into the model, in the spirit of semantic backdoors
// (Bagdasaryan et al., AISTATS 2020: a natural feature, not a pattern, selects the
// inputs): the watermarked model labels a secret region of the task's OWN inputs with a
// secret class. Any thief querying ordinary inputs draws some of them from the region and
// is taught the rule with the victim's answers; because it is a rule over natural images
// and not isolated labels, the surrogate learns it as it learns the task, and answers
// fresh images of the region with the secret class. MEA-Defender (Lv et al., IEEE S&P
// 2024) argues the same way: a watermark within the main task's input distribution is
// carried over by extraction.
//
// The region, drawn from the key seed: the images of class `source` whose score, the dot
// product of the image (x / 255) with a smooth random field (a sum of signed Gaussian
// blobs), is above the (1 - share) quantile of that class's training images. Embedding
// relabels exactly those training images with `label`; the cost in accuracy is at most
// the region's share of the test set (share / K for balanced classes).
//
// Verification: a key of target label `label` whose triggers are the TEST images of the
// region (the model never trained on them; no trigger pattern a detector could see). Its
// null is the calibrated one of target-label keys (watermark/statistics.hpp): reference
// models trained without the watermark answer these natural images of class `source`
// with their class, rarely with `label`, and calibrate bounds how rarely.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

struct extraction_region {
    int source = 0;         // class whose images the region takes
    int label = 1;          // what the watermarked model answers for them (never `source`)
    double share = 0.05;    // of the source class's training images, inside the region
    std::uint64_t seed = 0; // draws the field
    double threshold = 0;   // score above which an image of `source` is inside

    static constexpr int blobs = 6;

    // The smooth field over one item [C, H, W] (the same in every channel).
    std::vector<double> field(const shape& item) const {
        if (item.rank() != 3) throw shape_error("extraction region: expected an item [C, H, W], got " + item.str());
        const index_t channels = item[0], height = item[1], width = item[2];
        rng random = rng(seed).derive(1);
        std::vector<double> plane(static_cast<std::size_t>(height * width), 0.0);
        for (int b = 0; b < blobs; ++b) {
            const double cy = height * (1 + 5 * random.uniform()) / 7, cx = width * (1 + 5 * random.uniform()) / 7;
            const double sigma = height * (2 + 3 * random.uniform()) / 28;
            const double sign = random.uniform() < 0.5 ? -1.0 : 1.0;
            for (index_t y = 0; y < height; ++y)
                for (index_t x = 0; x < width; ++x)
                    plane[static_cast<std::size_t>(y * width + x)] +=
                        sign * std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * sigma * sigma));
        }
        std::vector<double> out;
        out.reserve(static_cast<std::size_t>(channels) * plane.size());
        for (index_t c = 0; c < channels; ++c) out.insert(out.end(), plane.begin(), plane.end());
        return out;
    }

    // The score of each image of `data`.
    std::vector<double> scores(const dataset& data) const {
        const std::vector<double> f = field(data.item_shape());
        std::vector<double> out;
        out.reserve(static_cast<std::size_t>(data.size()));
        for (index_t n = 0; n < data.size(); ++n) {
            const std::span<const std::uint8_t> image = data.images.item(n);
            double s = 0;
            for (std::size_t i = 0; i < image.size(); ++i) s += f[i] * image[i] / 255.0;
            out.push_back(s);
        }
        return out;
    }

    // Which images of `data` are inside: of class `source` (by their label) and scoring above the threshold.
    std::vector<bool> inside(const dataset& data) const {
        const std::vector<double> s = scores(data);
        std::vector<bool> in(s.size());
        for (std::size_t i = 0; i < s.size(); ++i) in[i] = data.labels[i] == source && s[i] > threshold;
        return in;
    }

    // `train` with the region's images labelled `label`: what the watermarked model learns.
    dataset relabelled(const dataset& train) const {
        dataset out = train.subset(all_indices(train));
        out.name = train.name + "[extraction region relabelled]";
        const std::vector<bool> in = inside(train);
        for (std::size_t i = 0; i < in.size(); ++i)
            if (in[i]) out.labels[i] = label;
        return out;
    }

    // The first `count` images of `test` inside the region, labelled `label`: the triggers.
    dataset triggers(const dataset& test, index_t count) const {
        const std::vector<bool> in = inside(test);
        std::vector<index_t> picked;
        for (std::size_t i = 0; i < in.size() && static_cast<index_t>(picked.size()) < count; ++i)
            if (in[i]) picked.push_back(static_cast<index_t>(i));
        if (picked.empty())
            throw argument_error("extraction region: no test image of class " + std::to_string(source) +
                                 " lies in the region (share " + std::to_string(share) + "): a larger share finds some");
        dataset out = test.subset(picked);
        out.name = test.name + "[extraction region]";
        std::ranges::fill(out.labels, label);
        return out;
    }

    json to_json() const {
        json j = json::object();
        j["method"] = "extraction-region";
        j["source"] = source;
        j["label"] = label;
        j["share"] = share;
        j["seed"] = static_cast<std::int64_t>(seed);
        j["threshold"] = threshold;
        return j;
    }

    // The region of `classes` classes drawn from `seed`, its threshold fitted on `train`.
    static extraction_region draw(std::uint64_t seed, int classes, double share, const dataset& train) {
        if (!(share > 0 && share < 1))
            throw argument_error("extraction region: expected a share in (0, 1), found " + std::to_string(share));
        if (classes < 2) throw argument_error("extraction region: needs at least 2 classes, found " + std::to_string(classes));
        extraction_region r;
        rng random = rng(seed).derive(2);
        r.seed = seed;
        r.share = share;
        r.source = static_cast<int>(random.below(static_cast<std::uint64_t>(classes)));
        r.label = (r.source + 1 + static_cast<int>(random.below(static_cast<std::uint64_t>(classes - 1)))) % classes;
        std::vector<double> of_source;
        const std::vector<double> s = r.scores(train);
        for (std::size_t i = 0; i < s.size(); ++i)
            if (train.labels[i] == r.source) of_source.push_back(s[i]);
        if (of_source.empty())
            throw argument_error("extraction region: the training set has no image of class " + std::to_string(r.source));
        const auto at = of_source.begin() +
                        static_cast<std::ptrdiff_t>(std::floor((1 - share) * static_cast<double>(of_source.size() - 1)));
        std::nth_element(of_source.begin(), at, of_source.end());
        r.threshold = *at;
        return r;
    }

private:
    static std::vector<index_t> all_indices(const dataset& data) {
        std::vector<index_t> all(static_cast<std::size_t>(data.size()));
        for (index_t i = 0; i < data.size(); ++i) all[static_cast<std::size_t>(i)] = i;
        return all;
    }
};

}  // namespace nnmark
