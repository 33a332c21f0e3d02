// Tutorial: train the paper's CIFAR-10 network with nnmark.
//
//   put cifar-10-batches-bin/ into datasets/cifar10/   (datasets/fetch.sh cifar10 tries)
//   build/example_cifar10 [DATA_DIR] [EPOCHS] [OUT]    # defaults: datasets/cifar10 10 cifar10.safetensors
//
// The same steps as examples/mnist.cpp with the larger network of the paper's
// appendix (Table 7: 64/128 filters, dense 256). The test suite runs this program on
// small generated files in the CIFAR-10 binary format.
#include "nnmark/nnmark.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) try {
    const std::string data_dir = argc > 1 ? argv[1] : "datasets/cifar10";
    const int epochs = argc > 2 ? std::atoi(argv[2]) : 10;
    const std::string out = argc > 3 ? argv[3] : "cifar10.safetensors";

    // 1. Data: five training batches and one test batch, images uint8 [N, 3, 32, 32].
    const nnmark::dataset train = nnmark::load_dataset("cifar10", data_dir, /*train=*/true);
    const nnmark::dataset test = nnmark::load_dataset("cifar10", data_dir, /*train=*/false);
    std::printf("CIFAR-10: %lld training and %lld test images\n", static_cast<long long>(train.size()),
                static_cast<long long>(test.size()));

    // 2. The paper's CIFAR-10 network, initialized from a seed.
    nnmark::sequential<float> model = nnmark::build_architecture<float>("paper-cifar10");
    model.initialize(/*seed=*/1);

    // 3. Train with the default recipe for the requested number of epochs.
    nnmark::training_recipe recipe;
    recipe.epochs = epochs;
    nnmark::trainer<float> trainer(model, recipe);
    nnmark::progress_line progress;
    trainer.fit(train, &test, progress);

    // 4. Evaluate and save.
    const nnmark::evaluation result = nnmark::evaluate(model, test);
    std::printf("test accuracy: %.2f%%\n", 100 * result.accuracy());
    nnmark::save_model(model, out, nnmark::dataset_class_names("cifar10"));
    std::printf("model written to %s\n", out.c_str());
    return 0;
} catch (const nnmark::error& e) {
    std::fprintf(stderr, "example_cifar10: %s\n", e.what());
    return 2;
}
