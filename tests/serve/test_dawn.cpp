// DAWN (serve/dawn_answers.hpp, dawn_registry.hpp, dawn_statistics.hpp): the keyed
// decision is deterministic per (client, input), alters a fraction near r with labels
// other than the model's, uniform over them; the registry round-trips, refuses a
// corrupted record and a badly kept secret, survives a torn tail, and keeps every
// record of concurrent appends; the service answers altered labels with scores that
// agree; the statistic finds a suspect that learned the labels, not one that did not,
// and rejects at most alpha of an adversarial innocent population.
#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/serve/dawn_answers.hpp"
#include "nnmark/serve/dawn_extraction.hpp"
#include "nnmark/serve/dawn_registry.hpp"
#include "nnmark/serve/dawn_statistics.hpp"
#include "nnmark/serve/prediction_service.hpp"
#include "nnmark/train/evaluate.hpp"

#include "../support/errors.hpp"
#include "../support/files.hpp"
#include "../support/tiny_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>
#include <thread>

namespace nnmark::testing::dawn_tests {

dawn_secret fixed_secret(unsigned char seed) {
    dawn_secret secret{};
    for (std::size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<unsigned char>(seed + 7 * i);
    return secret;
}

// An MNIST-sized image of pixel bytes from `seed`, as the model sees it.
std::vector<float> random_image(std::uint64_t seed, std::size_t size = 784) {
    std::mt19937_64 random(seed);
    std::vector<float> image(size);
    for (float& v : image) v = static_cast<float>(random() % 256) / 255.0f;
    return image;
}

dawn_record record_of(const std::string& client, std::vector<float> image, int own, int answered, int classes = 10) {
    return {client, {1, 28, 28}, std::move(image), classes, own, answered, 1700000000000 + own};
}

// `record_of` with the label the secret gives, so the registry accepts it on reading.
dawn_record keyed_record(const dawn_secret& secret, const std::string& client, std::uint64_t seed, int own = 3) {
    std::vector<float> image = random_image(seed);
    const int label = dawn_altered_label(dawn_decision_digest(secret, client, image), own, 10);
    return record_of(client, std::move(image), own, label);
}

bool same_record(const dawn_record& a, const dawn_record& b) {
    return a.client == b.client && a.extents == b.extents && a.image == b.image && a.classes == b.classes &&
           a.own_label == b.own_label && a.answered_label == b.answered_label && a.unix_ms == b.unix_ms;
}

void record_keyed(dawn_registry& registry, const dawn_record& r) {
    CHECK(registry.record(r, dawn_decision_digest(registry.secret(), r.client, r.image)));
}

std::filesystem::path records_file(const temp_dir& dir) { return dir / "registry" / "records"; }

TEST_CASE("dawn answers: deterministic per (client, input), a fraction near r altered, to the other labels uniformly") {
    const dawn_answers answers(fixed_secret(1), 0.1);
    const std::vector<float> image = random_image(5);
    const dawn_decision once = answers.decide("10.0.0.1", image, 4, 10),
                        again = answers.decide("10.0.0.1", image, 4, 10);
    CHECK(once.digest == again.digest);
    CHECK(once.altered == again.altered);
    CHECK(once.label == again.label);
    CHECK(answers.decide("10.0.0.2", image, 4, 10).digest != once.digest);  // the client is part of the message

    constexpr int inputs = 20000, classes = 10;
    int altered = 0;
    std::vector<int> label_counts(classes);
    for (int i = 0; i < inputs; ++i) {
        const int own = i % classes;
        const dawn_decision d =
            answers.decide("client", random_image(100 + static_cast<std::uint64_t>(i), 16), own, classes);
        if (!d.altered) {
            CHECK(d.label == own);
            continue;
        }
        ++altered;
        CHECK(d.label != own);
        ++label_counts[static_cast<std::size_t>((d.label - own + classes) % classes)];  // offset 1..K-1
    }
    // Binomial(20000, 0.1): sd 42; 5 sd either way.
    CHECK(std::abs(altered - 2000) < 212);
    CHECK(label_counts[0] == 0);
    // Each of the 9 offsets has about altered / 9 = 222 (sd 14): within 5 sd.
    for (int offset = 1; offset < classes; ++offset)
        CHECK(std::abs(label_counts[static_cast<std::size_t>(offset)] - altered / 9.0) < 75);
    CHECK(error_message<argument_error>([] { dawn_answers(fixed_secret(1), 0.6); }).find("(0, 0.5]") !=
          std::string::npos);
}

TEST_CASE("dawn answers: the decision follows the decoded image, not how the request wrote it") {
    const shape item{1, 2, 2};
    const predict_request integers = parse_predict_request(R"({"instances": [[[84, 0], [255, 3]]]})", item);
    const predict_request channels = parse_predict_request(R"({"instances": [[[[84], [0]], [[255], [3]]]]})", item);
    const predict_request chw = parse_predict_request(R"({"instances": [[[[84, 0], [255, 3]]]]})", item);
    // The same pixels as 0-1 intensities (84 / 255, 3 / 255 to double precision).
    const predict_request intensities =
        parse_predict_request(R"({"instances": [[[0.32941176470588235, 0.0], [1.0, 0.011764705882352941]]]})", item);
    const dawn_answers answers(fixed_secret(2), 0.5);
    const dawn_digest digest = answers.decide("c", integers.images.item(0), 0, 10).digest;
    CHECK(answers.decide("c", channels.images.item(0), 0, 10).digest == digest);
    CHECK(answers.decide("c", chw.images.item(0), 0, 10).digest == digest);
    CHECK(answers.decide("c", intensities.images.item(0), 0, 10).digest == digest);
    const predict_request other = parse_predict_request(R"({"instances": [[[85, 0], [255, 3]]]})", item);
    CHECK(answers.decide("c", other.images.item(0), 0, 10).digest != digest);
}

TEST_CASE(
    "dawn registry: a secret of 32 bytes, owner-only; records round-trip, are not duplicated, one server at a time") {
    temp_dir dir;
    const auto registry_dir = dir / "registry";
    std::vector<dawn_record> written;
    {
        dawn_registry registry(registry_dir);
        struct stat st {};
        REQUIRE(::stat((registry_dir / "secret").c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        CHECK(st.st_size == 32);
        REQUIRE(::stat(registry_dir.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0700);
        for (std::uint64_t i = 0; i < 3; ++i) {
            written.push_back(keyed_record(registry.secret(), "client-" + std::to_string(i % 2), i));
            record_keyed(registry, written.back());
        }
        const dawn_record& repeat = written.front();
        CHECK_FALSE(registry.record(repeat, dawn_decision_digest(registry.secret(), repeat.client, repeat.image)));
        CHECK(registry.size() == 3);
        CHECK(error_message<io_error>([&] { dawn_registry second(registry_dir); }).find("locked") != std::string::npos);
    }
    dawn_registry reopened(registry_dir);
    CHECK(reopened.size() == 3);
    const dawn_record& repeat = written.back();
    CHECK_FALSE(reopened.record(repeat, dawn_decision_digest(reopened.secret(), repeat.client, repeat.image)));
    const dawn_registry_contents contents = read_dawn_records(registry_dir, reopened.secret());
    REQUIRE(contents.records.size() == 3);
    CHECK(contents.torn_bytes == 0);
    for (std::size_t i = 0; i < 3; ++i) CHECK(same_record(contents.records[i], written[i]));
}

TEST_CASE("dawn registry: a secret of another size or readable by others is refused") {
    temp_dir dir;
    const auto registry_dir = dir / "registry";
    { dawn_registry created(registry_dir); }
    const auto secret = registry_dir / "secret";
    ::chmod(secret.c_str(), 0640);
    CHECK(error_message<io_error>([&] { dawn_registry opened(registry_dir); }).find("found mode 0640") !=
          std::string::npos);
    ::chmod(secret.c_str(), 0600);
    std::filesystem::resize_file(secret, 31);
    CHECK(error_message<format_error>([&] { dawn_registry opened(registry_dir); }).find("32 bytes, found 31") !=
          std::string::npos);
    CHECK(error_message<io_error>([&] { open_dawn_secret(dir / "none", false); }).find("none") != std::string::npos);
}

TEST_CASE("dawn registry: a corrupted or forged record is refused") {
    temp_dir dir;
    const auto registry_dir = dir / "registry";
    dawn_secret secret;
    {
        dawn_registry registry(registry_dir);
        secret = registry.secret();
        for (std::uint64_t i = 0; i < 3; ++i) record_keyed(registry, keyed_record(secret, "c", i));
    }
    std::vector<unsigned char> bytes = read_file(records_file(dir));
    const std::size_t record = bytes.size() / 3;
    SUBCASE("a flipped pixel byte") {
        bytes[record + record / 2] ^= 0x40;
        write_file_atomically(records_file(dir), std::span<const unsigned char>(bytes));
        CHECK(error_message<format_error>([&] { read_dawn_records(registry_dir, secret); }).find("record 1") !=
              std::string::npos);
    }
    SUBCASE("a record tagged with another secret") {
        dawn_registry other(dir / "other");
        record_keyed(other, keyed_record(other.secret(), "c", 9));
        const std::vector<unsigned char> forged = read_file(dir / "other" / "records");
        bytes.insert(bytes.end(), forged.begin(), forged.end());
        write_file_atomically(records_file(dir), std::span<const unsigned char>(bytes));
        CHECK(error_message<format_error>([&] { dawn_registry reopened(registry_dir); }).find("HMAC tag") !=
              std::string::npos);
    }
}

TEST_CASE("dawn registry: a torn last record is left out, cut off on reopening, and appending goes on") {
    temp_dir dir;
    const auto registry_dir = dir / "registry";
    dawn_secret secret;
    std::vector<dawn_record> written;
    {
        dawn_registry registry(registry_dir);
        secret = registry.secret();
        for (std::uint64_t i = 0; i < 3; ++i) {
            written.push_back(keyed_record(secret, "c", i));
            record_keyed(registry, written.back());
        }
    }
    const auto full = std::filesystem::file_size(records_file(dir));
    for (const std::uintmax_t cut : {full - 1, full - full / 6, full - full / 3 + 5}) {  // in the tag, payload, header
        CAPTURE(cut);
        std::filesystem::resize_file(records_file(dir), cut);
        const dawn_registry_contents torn = read_dawn_records(registry_dir, secret);
        REQUIRE(torn.records.size() == 2);
        CHECK(torn.torn_bytes == cut - full / 3 * 2);
        for (std::size_t i = 0; i < 2; ++i) CHECK(same_record(torn.records[i], written[i]));
        {
            dawn_registry reopened(registry_dir);
            CHECK(reopened.torn_bytes_at_start() == torn.torn_bytes);
            CHECK(reopened.size() == 2);
            record_keyed(reopened, written[2]);  // the lost record is new again
        }
        const dawn_registry_contents healed = read_dawn_records(registry_dir, secret);
        REQUIRE(healed.records.size() == 3);
        CHECK(healed.torn_bytes == 0);
        CHECK(same_record(healed.records[2], written[2]));
    }
}

TEST_CASE("dawn registry: concurrent appends from several threads all land, each once") {
    temp_dir dir;
    const auto registry_dir = dir / "registry";
    dawn_registry registry(registry_dir);
    constexpr int threads = 6, each = 20;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
            for (int i = 0; i < each; ++i) {
                // Every thread also repeats thread 0's records: each must land once.
                for (const std::uint64_t seed : {std::uint64_t(t * each + i), std::uint64_t(i)}) {
                    const dawn_record r = keyed_record(registry.secret(), "c", seed);
                    registry.record(r, dawn_decision_digest(registry.secret(), r.client, r.image));
                }
            }
        });
    for (auto& w : workers) w.join();
    CHECK(registry.size() == threads * each);
    const dawn_registry_contents contents = read_dawn_records(registry_dir, registry.secret());
    REQUIRE(contents.records.size() == threads * each);
    std::set<std::vector<float>> images;
    for (const dawn_record& r : contents.records) images.insert(r.image);
    CHECK(images.size() == threads * each);
}

TEST_CASE("dawn service: altered answers are recorded, their scores agree, the same input gets the same answer") {
    temp_dir dir;
    sequential<float> model = make_tiny_net<float>();
    model.initialize(3);
    const dataset data = make_quadrant_dataset(64, 5);
    const std::vector<int> own = predict_labels(model, data);
    dawn_registry registry(dir / "registry");
    const dawn_answers answers(registry.secret(), 0.5);
    const prediction_service service(model, "tiny", {64}, dawn_layer{answers, registry});
    const std::string body = predict_request_body(data.size(), data.item_shape(), image_layout::hwc, "scores",
                                                  [&](index_t i) { return data.images.item(i); });
    service_buffers buffers;
    const service_reply first = service.predict(body, buffers, "10.1.2.3");
    REQUIRE(first.status == 200);
    const std::vector<int> labels = read_prediction_labels(first.body, data.size(), {}, 4);
    CHECK(read_prediction_labels(first.body, data.size(), {"scores", true}, 4) == labels);
    CHECK(read_prediction_labels(service.predict(body, buffers, "10.1.2.3").body, data.size(), {}, 4) == labels);
    std::size_t altered = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) altered += labels[i] != own[i];
    CHECK(altered > 16);  // about half of 64
    CHECK(altered < 48);
    CHECK(registry.size() == altered);  // asking twice recorded nothing more
    // :classify answers through the same decisions: its top classes are the answered labels.
    std::string examples = "{\"examples\":[";
    for (index_t i = 0; i < data.size(); ++i) {
        examples += i ? ",{\"image\":" : "{\"image\":";
        append_instance(examples, data.images.item(i), data.item_shape(), image_layout::hwc);
        examples += '}';
    }
    const service_reply classified = service.classify(examples + "]}", buffers, "10.1.2.3");
    REQUIRE(classified.status == 200);
    const json result = parse_json(classified.body, "result");
    std::vector<int> top;
    for (const json_view& classes : json_view(result, "result")["result"].elements()) {
        std::vector<double> scores;
        for (const json_view& pair : classes.elements()) scores.push_back(pair.elements()[1].as_double());
        top.push_back(static_cast<int>(std::max_element(scores.begin(), scores.end()) - scores.begin()));
    }
    CHECK(top == labels);
    CHECK(registry.size() == altered);
    const dawn_registry_contents contents = read_dawn_records(dir / "registry", registry.secret());
    for (const dawn_record& r : contents.records) {
        CHECK(r.client == "10.1.2.3");
        CHECK(r.classes == 4);
        CHECK(r.answered_label != r.own_label);
    }
    service.predict(body, buffers, "10.1.2.4");  // another client: decisions of its own
    CHECK(registry.size() > altered);
}

TEST_CASE("dawn extraction: the answers in memory are the served ones, each altered one recorded") {
    temp_dir dir;
    sequential<float> model = make_tiny_net<float>();
    model.initialize(3);
    const dataset data = make_quadrant_dataset(64, 5);
    dawn_registry registry(dir / "registry");
    const dawn_answers answers(registry.secret(), 0.5);
    const dawn_answered_queries through = answer_through_dawn(model, strip_labels(data), answers, "thief");

    // The server, asked the same images by the same client, answers the same labels.
    const prediction_service service(model, "tiny", {64}, dawn_layer{answers, registry});
    const std::string body = predict_request_body(data.size(), data.item_shape(), image_layout::hwc, "",
                                                  [&](index_t i) { return data.images.item(i); });
    service_buffers buffers;
    const std::vector<int> served = read_prediction_labels(service.predict(body, buffers, "thief").body, data.size(), {}, 4);
    CHECK(through.answers.labelled.labels == served);
    CHECK(through.records.size() == registry.size());

    // Each record is an altered answer, its image as the model saw it; the scores agree with the labels.
    const std::vector<int> own = predict_labels(model, data);
    std::size_t altered = 0;
    for (index_t i = 0; i < data.size(); ++i) {
        const std::span<const float> scores = through.answers.scores.item(i);
        CHECK(std::max_element(scores.begin(), scores.end()) - scores.begin() == served[static_cast<std::size_t>(i)]);
        altered += served[static_cast<std::size_t>(i)] != own[static_cast<std::size_t>(i)];
    }
    CHECK(through.records.size() == altered);
    for (const dawn_record& r : through.records) {
        CHECK(r.client == "thief");
        CHECK(r.answered_label != r.own_label);
        CHECK(r.image.size() == 64);
    }
    // The records hold the images as the model saw them: asked again, it gives its own labels.
    std::vector<int> recorded_own;
    for (const dawn_record& r : through.records) recorded_own.push_back(r.own_label);
    CHECK(suspect_answers_to_records(model, through.records) == recorded_own);
}

TEST_CASE("dawn statistic: a suspect that learned the altered labels is found, one that answers its own is not") {
    const dawn_secret secret = fixed_secret(3);
    std::vector<dawn_record> records;
    for (std::uint64_t i = 0; i < 40; ++i) records.push_back(keyed_record(secret, i < 30 ? "thief" : "user", i));
    std::vector<int> learned, own, partly;
    for (const dawn_record& r : records) {
        learned.push_back(r.answered_label);
        own.push_back(r.own_label);
        partly.push_back(r.client == "thief" ? r.answered_label : r.own_label);
    }
    const dawn_verification found = verify_dawn_answers(records, learned, 1e-6);
    CHECK(found.overall.matches == 40);
    CHECK(found.informative == 40);
    CHECK(found.overall.watermark_present);
    CHECK(found.overall.log10_p_value == doctest::Approx(40 * std::log10(1.0 / 9)));
    CHECK(found.overall.null_rate == doctest::Approx(1.0 / 9));
    const dawn_verification innocent = verify_dawn_answers(records, own, 1e-6);
    CHECK(innocent.overall.matches == 0);
    CHECK(innocent.informative == 0);  // nothing to test: every answer is the victim's own
    CHECK(innocent.overall.p_value == 1.0);
    CHECK_FALSE(innocent.overall.watermark_present);
    const dawn_verification per_client = verify_dawn_answers(records, partly, 1e-6);
    REQUIRE(per_client.clients.size() == 2);
    const dawn_client_result& thief = per_client.clients[0];
    CHECK(thief.client == "thief");
    CHECK(thief.queries == 30);
    CHECK(thief.informative == 30);
    CHECK(thief.matches == 30);
    // Over the 30 records answered otherwise, not the 40 asked: the user's 10 records,
    // answered with the victim's own labels, cannot match and do not count against it.
    CHECK(per_client.overall.log10_p_value == doctest::Approx(30 * std::log10(1.0 / 9)));
    CHECK(thief.adjusted_p_value == doctest::Approx(2 * thief.p_value));
    CHECK(per_client.clients[1].matches == 0);
    CHECK(error_message<argument_error>([&] { verify_dawn_answers(records, std::vector<int>(3), 1e-6); })
              .find("3 answers for 40 records") != std::string::npos);
}

TEST_CASE("dawn statistic: an adversarial innocent population is declared present at most alpha of the time") {
    // The innocent suspect that matches most often never answers the victim's own label
    // where it could match: each such record then matches with probability exactly
    // 1/(K - 1). It answers a third of the records with the victim's label, which the
    // test leaves out (conditioning on the answers). Its answers are fixed; the altered
    // labels are drawn as the server draws them, from HMAC digests of fresh secrets.
    constexpr int classes = 10, records_per_trial = 30, trials = 4000;
    constexpr double alpha = 0.02;
    int rejections = 0;
    for (int trial = 0; trial < trials; ++trial) {
        const dawn_secret secret = fixed_secret(static_cast<unsigned char>(trial)) ;
        std::vector<dawn_record> records;
        std::vector<int> answers;
        for (int i = 0; i < records_per_trial; ++i) {
            const int own = i % classes;
            std::vector<float> image =
                random_image(static_cast<std::uint64_t>(trial) * 1000 + static_cast<std::uint64_t>(i), 8);
            const int label =
                dawn_altered_label(dawn_decision_digest(secret, std::to_string(trial), image), own, classes);
            records.push_back({"c", {1, 2, 4}, std::move(image), classes, own, label, 0});
            // Any class but the victim's, except every third record: answered with its own
            // label, which cannot match and leaves 20 informative records.
            answers.push_back(i % 3 == 0 ? own : (own + 1 + i % (classes - 1)) % classes);
        }
        rejections += verify_dawn_answers(records, answers, alpha).overall.watermark_present;
    }
    // The discrete tail keeps the exact rate below alpha; 3 sd of the simulation above it.
    CHECK(rejections <= alpha * trials + 3 * std::sqrt(alpha * trials));
    // And the rate is the binomial's own over the 20 informative records, P[Binomial(20,
    // 1/9) >= 6] = 0.0184 (the least count with a tail <= alpha), within 4 sd: the HMAC labels
    // are uniform and independent as the bound assumes, and the simulation is not vacuous.
    constexpr index_t informative = records_per_trial - records_per_trial / 3;
    const double exact = binomial_tail_p_value(informative, 6, 1.0 / (classes - 1));
    REQUIRE(exact <= alpha);
    REQUIRE(binomial_tail_p_value(informative, 5, 1.0 / (classes - 1)) > alpha);
    CHECK(std::abs(rejections - exact * trials) < 4 * std::sqrt(exact * trials));
}

}  // namespace nnmark::testing::dawn_tests
