// A program built against an installed nnmark, the way a user's is: it sees only the
// installed headers and what find_package(nnmark) or `pkg-config nnmark` gives it.
// It runs the paper's MNIST network on a zero image and checks that the version of
// the headers is the version the build system found (NNMARK_PACKAGE_VERSION, passed
// in by tests/package/consumer/CMakeLists.txt or scripts/test-package.sh).
#include <nnmark/nnmark.hpp>

#include <cstdio>
#include <cstring>

int main() try {
    if (std::strcmp(NNMARK_VERSION_STRING, NNMARK_PACKAGE_VERSION) != 0) {
        std::fprintf(stderr, "consumer: expected the headers of nnmark %s, found %s\n", NNMARK_PACKAGE_VERSION,
                     NNMARK_VERSION_STRING);
        return 1;
    }
    nnmark::sequential<float> model = nnmark::build_architecture<float>("paper-mnist");
    model.initialize(/*seed=*/1);
    const nnmark::tensor<float> image(model.input_item().prepend(1));
    const nnmark::tensor<float> logits = model.predict(image);
    std::printf("nnmark %s: paper-mnist on a zero image gives logits %s\n", NNMARK_VERSION_STRING,
                logits.shape().str().c_str());
    return logits.shape() == nnmark::shape{1, 10} ? 0 : 1;
} catch (const nnmark::error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 2;
}
