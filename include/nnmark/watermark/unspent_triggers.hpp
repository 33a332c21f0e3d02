// unspent_triggers: which triggers a remote verification sends, so that none was sent
// by an earlier one (the spent images of watermark/trigger_ledger.hpp).
//
// The choice, for `count` triggers:
// 1. the key's own triggers whose images are not spent, in key order;
// 2. when they are too few and the key has target labels (label_mode "target": content,
//    noise and unrelated keys), fresh triggers: the committed recipe's generator
//    (make_fresh_triggers, watermark/trigger_set.hpp) applied to the images of the key's
//    pool (the owner's training images of the source class; for unrelated triggers the
//    source dataset's training images of its source class) that neither the key nor an
//    earlier verification used, in the order rng(seed).derive(fresh_stream) draws them,
//    all labelled with the target. The pool must be the committed one: the recipe run on
//    it must give the key's triggers byte for byte (check_pool_reproduces_key), which
//    also proves the recipe read back from the key is the generator that made them;
// 3. random-label keys get no fresh triggers (each secret label belongs to one key
//    image; a new image has none), so a key made with --count 300 serves three
//    verifications of 100 triggers. Fewer unspent triggers than asked: argument_error.
//
// Why the p-values stay valid (watermark/statistics.hpp gives the arguments in full):
// - Random labels. Under H0 an innocent model's answers depend on the images only, and
//   each label is an independent uniform draw over the K - 1 classes other than its
//   image's class (the source; a natural trigger's own class), from the key's seed and
//   that class alone. Which key triggers are sent depends only on the
//   ledger (the images sent before), never on the labels, so given the model's answers
//   the chosen triggers still match independently with probability 1/(K - 1) each: the
//   binomial bound holds for any such subset.
// - Target labels, calibrated. The beta-binomial null bounds how often an innocent model
//   of the reference population answers the target on triggers DRAWN FROM THE GENERATOR:
//   the recipe applied to images picked uniformly from the source-class pool. The key's
//   triggers are such draws; an unspent subset of them is chosen by the ledger alone,
//   and fresh triggers are further uniform draws (a random permutation of the pool, the
//   spent images removed without regard to any model's answers) by the same generator
//   from the same pool. For a model independent of the key, every trigger sent is thus
//   exchangeable with the calibration's, and the fitted mean and correlation bound its
//   matches as they bound the key's. The suspect's own control (triggers against decoys
//   of other classes, log_control_tail) compares its answers on the triggers sent with
//   its answers on the decoys sent, and needs nothing of the key. verify reports the
//   larger p, as before. What the fresh triggers need from the watermarked model is
//   that it generalised the pattern to new images: embed measures that
//   (trigger_accuracy_new) and the paper reports it (Table 1).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/trigger_ledger.hpp"
#include "nnmark/watermark/trigger_set.hpp"
#include "nnmark/watermark/verify.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace nnmark {

// The triggers one verification sends, and what they are.
struct trigger_selection {
    dataset triggers;                 // with the labels the watermarked model answers
    index_t from_key = 0;             // the key's own (first), then
    index_t fresh = 0;                // made by the recipe's generator
    std::vector<std::string> sha256;  // trigger_image_sha256 of each, in order
};

// The recipe a key's metadata holds, read back into the generator's parameters
// (the inverse of watermark/embed.hpp's recipe_json). Throws format_error naming the
// first field missing or of the wrong type, argument_error for a recipe that cannot work.
inline trigger_recipe trigger_recipe_of(const watermark_key& key) {
    const json_view v(key.recipe, "key recipe");
    trigger_recipe r;
    r.kind = parse_trigger_kind(v["kind"].as_string(), v["kind"].path());
    r.source = static_cast<int>(v["source"].as_int_at_least(r.kind == trigger_kind::natural ? every_class : 0));
    r.target = static_cast<int>(v["target"].as_int_at_least(0));
    r.seed = static_cast<std::uint64_t>(v["seed"].as_int());
    r.count = v["count"].as_int_at_least(1);
    r.label_mode = parse_trigger_labeling(v["label_mode"].as_string(), v["label_mode"].path());
    r.classes = static_cast<int>(v["classes"].as_int_at_least(2));
    r.source_dataset = v["source_dataset"].as_string();
    const json_view generator = v["generator"];
    if (r.kind == trigger_kind::content) {
        r.content.text = generator["text"].as_string();
        r.content.x = static_cast<int>(generator["x"].as_int());
        r.content.y = static_cast<int>(generator["y"].as_int());
        r.content.intensity = static_cast<int>(generator["intensity"].as_int());
        r.content.scale = static_cast<int>(generator["scale"].as_int_at_least(1));
    } else if (r.kind == trigger_kind::noise) {
        r.sigma = generator["sigma"].as_double();
    }
    r.validate();
    return r;
}

// argument_error unless `recipe` on `pool` makes exactly the key's triggers: the pool is
// the one the key was committed with, and the recipe is the generator that made it.
inline void check_pool_reproduces_key(const watermark_key& key, const trigger_recipe& recipe, const dataset& pool) {
    const dataset remade = make_trigger_set(recipe, pool, key.triggers.item_shape());
    const auto& a = remade.images;
    const auto& b = key.triggers.images;
    const bool same = a.shape() == b.shape() && std::equal(a.data(), a.data() + a.size(), b.data()) &&
                      remade.labels == key.triggers.labels;
    if (!same)
        throw argument_error("fresh triggers: the key's recipe on " + pool.name + " (" + std::to_string(pool.size()) +
                             " images of class " + std::to_string(recipe.source) +
                             ") does not make the key's triggers; give the training images the key was made from "
                             "(--data, --unrelated-data)");
}

namespace detail {

// The images of `from` whose SHA-256 is not in `spent`, in order, at most `count`;
// their digests are appended to `digests`.
inline dataset unspent_images(const dataset& from, const std::set<std::string>& spent, index_t count,
                              std::vector<std::string>& digests) {
    std::vector<index_t> chosen;
    for (index_t i = 0; i < from.size() && static_cast<index_t>(chosen.size()) < count; ++i) {
        std::string digest = trigger_image_sha256(from, i);
        if (spent.contains(digest)) continue;
        chosen.push_back(i);
        digests.push_back(std::move(digest));
    }
    dataset out = from.subset(chosen);
    out.name = from.name + "[unspent]";
    return out;
}

// `a` then `b`, two trigger sets of one key.
inline dataset concatenate(const dataset& a, const dataset& b) {
    if (b.size() == 0) return a;
    if (a.size() == 0) return b;
    dataset out;
    out.images.resize(a.item_shape().prepend(a.size() + b.size()));
    std::memcpy(out.images.data(), a.images.data(), a.images.size());
    std::memcpy(out.images.data() + a.images.size(), b.images.data(), b.images.size());
    out.labels = a.labels;
    out.labels.insert(out.labels.end(), b.labels.begin(), b.labels.end());
    out.classes = a.classes;
    out.name = a.name + " + " + b.name;
    return out;
}

}  // namespace detail

// `count` triggers of `key` none of whose images is in `spent`, as the header says.
// `fresh_pool` loads the key's pool when fresh triggers are needed (target labels only;
// it is not called otherwise). Throws argument_error when fewer than `count` remain.
template <class LoadPool>
trigger_selection choose_unspent_triggers(const watermark_key& key, const std::set<std::string>& spent, index_t count,
                                          LoadPool&& fresh_pool) {
    trigger_selection s;
    const dataset own = detail::unspent_images(key.triggers, spent, count, s.sha256);
    s.from_key = own.size();
    index_t available = s.from_key;
    const bool target_labels = detail::key_target(key).has_value();  // else no fresh triggers: no recipe needed
    if (s.from_key < count && target_labels) {
        const trigger_recipe recipe = trigger_recipe_of(key);
        const dataset pool = fresh_pool(recipe);
        check_pool_reproduces_key(key, recipe, pool);
        // Every image of the pool but the key's, as the generator makes them, in its order;
        // the key's own triggers count as spent here (sent now, or earlier).
        std::set<std::string> used = spent;
        for (index_t i = 0; i < key.triggers.size(); ++i) used.insert(trigger_image_sha256(key.triggers, i));
        const index_t others = pool.size() - recipe.count;
        const dataset fresh =
            others < 1 ? dataset{}
                       : detail::unspent_images(make_fresh_triggers(recipe, pool, key.triggers.item_shape(), others),
                                                used, count - s.from_key, s.sha256);
        s.fresh = fresh.size();
        available += s.fresh;
        s.triggers = detail::concatenate(own, fresh);
    } else {
        s.triggers = own;
    }
    if (available < count)
        throw argument_error(
            "unspent triggers: " + std::to_string(count) + " needed, " + std::to_string(available) +
            " unspent remain (" + std::to_string(spent.size()) + " trigger images spent before" +
            (target_labels ? "; the source images are used up" : "; a random-label key cannot make new ones") +
            "): send fewer (--triggers), make a new key, or resend spent ones (--reuse-triggers; a thief may "
            "filter them)");
    s.triggers.classes = key.triggers.classes;
    s.triggers.name = "unspent triggers of " + key.triggers.name;
    return s;
}

// The key's first `count` triggers, spent or not (verify --reuse-triggers).
inline trigger_selection first_key_triggers(const watermark_key& key, index_t count) {
    if (count > key.triggers.size())
        throw argument_error("reused triggers: " + std::to_string(count) + " asked, the key has " +
                             std::to_string(key.triggers.size()));
    trigger_selection s;
    std::vector<index_t> first(static_cast<std::size_t>(count));
    for (index_t i = 0; i < count; ++i) first[static_cast<std::size_t>(i)] = i;
    s.triggers = key.triggers.subset(first);
    s.from_key = count;
    for (index_t i = 0; i < count; ++i) s.sha256.push_back(trigger_image_sha256(s.triggers, i));
    return s;
}

// `key` with `selection`'s triggers in place of its own: what verify_answers checks the
// answers against (same recipe, so the same null; see the header for why it holds).
inline watermark_key key_with_triggers(const watermark_key& key, const trigger_selection& selection) {
    watermark_key out = key;
    out.triggers = selection.triggers;
    return out;
}

}  // namespace nnmark
