// Tutorial: train the paper's MNIST network with nnmark, step by step.
//
//   datasets/fetch.sh mnist                  # the four IDX files, SHA-256 verified
//   build/example_mnist [DATA_DIR] [EPOCHS]  # defaults: datasets/mnist 10
//
// Every step below is what `nnmark train --dataset mnist` does; the tool only adds
// flags, checkpoints and JSON output around the same calls.
#include "nnmark/nnmark.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) try {
    const std::string data_dir = argc > 1 ? argv[1] : "datasets/mnist";
    const int epochs = argc > 2 ? std::atoi(argv[2]) : 10;

    // 1. Data. Images stay uint8 [N, 1, 28, 28] in memory; batches are converted to
    //    floats in [0, 1] as the trainer forms them.
    const nnmark::dataset train = nnmark::load_dataset("mnist", data_dir, /*train=*/true);
    const nnmark::dataset test = nnmark::load_dataset("mnist", data_dir, /*train=*/false);
    std::printf("MNIST: %lld training and %lld test images\n", static_cast<long long>(train.size()),
                static_cast<long long>(test.size()));

    // 2. The network of the paper's appendix (Table 6): four valid 3x3 convolutions,
    //    two max-pools, two dense layers of 200 with dropout, ten logits. Initial
    //    weights come from the seed alone (He initialization).
    nnmark::sequential<float> model = nnmark::build_architecture<float>("paper-mnist");
    model.initialize(/*seed=*/1);

    // 3. The recipe: nnmark's default (SGD with Nesterov momentum, cosine schedule)
    //    reaches the paper's accuracy in 10 epochs instead of the paper's 50.
    nnmark::training_recipe recipe;
    recipe.epochs = epochs;

    // 4. Train. The progress line shows loss, accuracy, images/s and the time left;
    //    each epoch ends with the test accuracy.
    nnmark::trainer<float> trainer(model, recipe);
    nnmark::progress_line progress;
    trainer.fit(train, &test, progress);

    // 5. Evaluate in eval mode (dropout off) and save as safetensors, a file that
    //    PyTorch's safetensors reader opens as well.
    const nnmark::evaluation result = nnmark::evaluate(model, test);
    std::printf("test accuracy: %.2f%%\n", 100 * result.accuracy());
    nnmark::save_model(model, "mnist.safetensors", nnmark::dataset_class_names("mnist"));
    std::printf("model written to mnist.safetensors\n");
    return 0;
} catch (const nnmark::error& e) {
    std::fprintf(stderr, "example_mnist: %s\n", e.what());
    return 2;
}
