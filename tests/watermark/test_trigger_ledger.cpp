#include "nnmark/watermark/trigger_ledger.hpp"
#include "nnmark/watermark/unspent_triggers.hpp"

#include "nnmark/watermark/embed.hpp"

#include "../support/files.hpp"
#include "../support/pools.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace nnmark;
using testing::random_pool;
using testing::temp_dir;

namespace {

const std::string key_a(64, 'a'), key_b(64, 'b');

std::string digest_of(int i) { return sha256_hex(std::to_string(i)); }

ledger_entry entry_of(const std::string& commitment, int first, int count, std::int64_t fresh = 0) {
    ledger_entry e{commitment, "2026-12-04T04:05:06Z", "http://127.0.0.1:1/v1/models/m:predict", fresh, {}};
    for (int i = first; i < first + count; ++i) e.sha256.push_back(digest_of(i));
    return e;
}

void append_raw(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::app) << text;
}

// A key of `count` `kind` triggers made, like embed makes one, from
// `pool` (the source class's training images).
watermark_key made_key(const dataset& pool, index_t count, const std::string& label_mode = "target",
                       const std::string& kind = "content") {
    trigger_recipe recipe = default_recipe("mnist", parse_trigger_kind(kind, "test"));
    recipe.count = count;
    recipe.seed = 7;
    recipe.label_mode = parse_trigger_labeling(label_mode, "test");
    watermark_key key;
    key.triggers = make_trigger_set(recipe, pool, pool.item_shape());
    key.recipe = recipe_json(recipe, "mnist", pool.item_shape(), {});
    return key;
}

std::set<std::string> digests_of(const dataset& images) {
    std::set<std::string> out;
    for (index_t i = 0; i < images.size(); ++i) out.insert(trigger_image_sha256(images, i));
    return out;
}

}  // namespace

TEST_CASE("trigger ledger: entries round-trip and every image they name is spent") {
    temp_dir dir;
    const auto path = dir / "key.ledger";
    {
        trigger_ledger ledger(path, key_a);
        CHECK(ledger.entries() == 0);
        CHECK(ledger.spent().empty());
        ledger.append(entry_of(key_a, 0, 3, 1));
        ledger.append(entry_of(key_a, 3, 2));
        CHECK(ledger.spent().size() == 5);
    }
    const ledger_contents read = read_trigger_ledger(path, key_a);
    REQUIRE(read.entries.size() == 2);
    CHECK(read.torn_bytes == 0);
    CHECK(read.entries[0].sha256 == entry_of(key_a, 0, 3).sha256);
    CHECK(read.entries[0].fresh_triggers == 1);
    CHECK(read.entries[0].url == "http://127.0.0.1:1/v1/models/m:predict");
    CHECK(read.entries[1].time == "2026-12-04T04:05:06Z");
    trigger_ledger reopened(path, key_a);
    CHECK(reopened.entries() == 2);
    CHECK(reopened.spent() ==
          std::set<std::string>{digest_of(0), digest_of(1), digest_of(2), digest_of(3), digest_of(4)});
    CHECK(ledger_time_now().size() == 20);
}

TEST_CASE("trigger ledger: a torn last entry is ignored and cut off before the next append") {
    temp_dir dir;
    const auto path = dir / "key.ledger";
    trigger_ledger(path, key_a).append(entry_of(key_a, 0, 2));
    const std::string torn = detail::ledger::entry_line(entry_of(key_a, 2, 2)).substr(0, 50);
    append_raw(path, torn);  // killed while writing: no newline
    {
        trigger_ledger ledger(path, key_a);
        CHECK(ledger.torn_bytes_at_open() == torn.size());
        CHECK(ledger.spent().size() == 2);
        ledger.append(entry_of(key_a, 4, 1));
    }
    const ledger_contents read = read_trigger_ledger(path, key_a);
    CHECK(read.torn_bytes == 0);
    REQUIRE(read.entries.size() == 2);
    CHECK(read.entries[1].sha256 == entry_of(key_a, 4, 1).sha256);
}

TEST_CASE("trigger ledger: another key's ledger, a malformed line and a second user are refused") {
    temp_dir dir;
    const auto path = dir / "key.ledger";
    trigger_ledger(path, key_a).append(entry_of(key_a, 0, 2));
    const std::string refusal = "not this one (" + key_b.substr(0, 16);
    CHECK_THROWS_WITH_AS(trigger_ledger(path, key_b), doctest::Contains(refusal.c_str()), argument_error);
    {
        trigger_ledger holder(path, key_a);
        CHECK_THROWS_WITH_AS(trigger_ledger(path, key_a), doctest::Contains("locked"), io_error);
        CHECK_THROWS_AS(holder.append(entry_of(key_b, 0, 1)), argument_error);
    }
    append_raw(path, "{\"ledger\":\"nnmark-trigger-ledger-v1\",\"commitment\":\"" + key_a + "\"}\n");
    CHECK_THROWS_WITH_AS(trigger_ledger(path, key_a), doctest::Contains("key.ledger:2"), format_error);
    const auto bad_digest = dir / "bad.ledger";
    std::string line = detail::ledger::entry_line(entry_of(key_a, 0, 1));
    line.replace(line.find(digest_of(0)), 64, std::string(64, 'G'));
    append_raw(bad_digest, line);
    CHECK_THROWS_WITH_AS(read_trigger_ledger(bad_digest, key_a), doctest::Contains("hex digits"), format_error);
}

TEST_CASE("unspent triggers: the key's unspent ones first, then fresh ones of the recipe, never one twice") {
    for (const std::string kind : {"content", "noise", "unrelated"}) {
        CAPTURE(kind);
        const dataset pool = random_pool(24, {1, 28, 28}, 5, 1);
        const watermark_key key = made_key(pool, 6, "target", kind);
        const auto load_pool = [&](const trigger_recipe&) { return pool; };
        std::set<std::string> spent;
        std::set<std::string> key_images = digests_of(key.triggers);
        index_t fresh_total = 0;
        for (int run = 0; run < 4; ++run) {  // 4 x 5 = 20 of the 6 key + 18 other images
            const trigger_selection s = choose_unspent_triggers(key, spent, 5, load_pool);
            REQUIRE(s.triggers.size() == 5);
            CHECK(s.from_key + s.fresh == 5);
            CHECK(s.triggers.labels == std::vector<int>(5, 0));  // the recipe's target
            CHECK(digests_of(s.triggers) == std::set<std::string>(s.sha256.begin(), s.sha256.end()));
            for (const std::string& d : s.sha256) CHECK_MESSAGE(spent.insert(d).second, "sent twice: " << d);
            fresh_total += s.fresh;
        }
        CHECK(fresh_total == 14);  // the key's 6, then 14 made from the pool's other images
        for (const std::string& d : key_images) CHECK(spent.contains(d));
        // 4 of the pool's 18 other images are left: asking 5 says what is spent and what to do.
        CHECK_THROWS_WITH_AS(choose_unspent_triggers(key, spent, 5, load_pool),
                             doctest::Contains("5 needed, 4 unspent remain (20 trigger images spent before"),
                             argument_error);
        // A pool the key was not made from is refused: its fresh triggers would be another recipe's.
        const dataset other = random_pool(24, {1, 28, 28}, 6, 1);
        const auto load_other = [&](const trigger_recipe&) { return other; };
        CHECK_THROWS_WITH_AS(choose_unspent_triggers(key, digests_of(key.triggers), 2, load_other),
                             doctest::Contains("does not make the key's triggers"), argument_error);
    }
}

TEST_CASE("unspent triggers: a random-label key serves its triggers once, with their secret labels") {
    const dataset pool = random_pool(30, {1, 28, 28}, 5, 1);
    const watermark_key key = made_key(pool, 9, "random");
    const auto no_pool = [](const trigger_recipe&) -> dataset { throw std::logic_error("no fresh triggers here"); };
    std::set<std::string> spent;
    for (int run = 0; run < 3; ++run) {
        const trigger_selection s = choose_unspent_triggers(key, spent, 3, no_pool);
        CHECK(s.fresh == 0);
        const auto first = key.triggers.labels.begin() + 3 * run;
        CHECK(s.triggers.labels == std::vector<int>(first, first + 3));
        spent.insert(s.sha256.begin(), s.sha256.end());
    }
    CHECK_THROWS_WITH_AS(choose_unspent_triggers(key, spent, 1, no_pool), doctest::Contains("random-label key cannot"),
                         argument_error);
    // --reuse-triggers: the first ones again, spent or not.
    const trigger_selection again = first_key_triggers(key, 2);
    CHECK(again.sha256 ==
          std::vector<std::string>{trigger_image_sha256(key.triggers, 0), trigger_image_sha256(key.triggers, 1)});
    CHECK_THROWS_AS(first_key_triggers(key, 10), argument_error);
    CHECK(trigger_recipe_of(key).label_mode == trigger_labeling::random);
    CHECK(trigger_recipe_of(key).content.text == "TEST");
}
