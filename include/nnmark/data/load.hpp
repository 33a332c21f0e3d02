// load_dataset: a dataset by name, the single entry point the tool and the examples use.
//
//   mnist, fashion-mnist  IDX files (raw or .gz), images [N, 1, 28, 28]
//   cifar10               the CIFAR-10 binary batches, images [N, 3, 32, 32]
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/data/cifar10.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/data/idx.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

// The architecture the paper trains on each dataset.
inline std::string default_architecture(std::string_view dataset_name) {
    return dataset_name == "cifar10" ? "paper-cifar10" : "paper-mnist";
}

// The number of classes of dataset `name`: 10 for each of the three nnmark loads.
inline int dataset_class_count(std::string_view name) {
    if (name == "mnist" || name == "fashion-mnist" || name == "cifar10") return 10;
    throw argument_error("unknown dataset '" + std::string(name) + "': expected mnist, fashion-mnist or cifar10");
}

// The names of dataset `name`'s classes, by label: what model files record
// (model/model_preprocessing.hpp) and a served model's metadata shows.
inline std::vector<std::string> dataset_class_names(std::string_view name) {
    if (name == "mnist") return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    if (name == "fashion-mnist")
        return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    if (name == "cifar10")
        return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
    throw argument_error("unknown dataset '" + std::string(name) + "': expected mnist, fashion-mnist or cifar10");
}

// The training (train = true) or test split of dataset `name` stored in `dir`.
inline dataset load_dataset(std::string_view name, const std::filesystem::path& dir, bool train) {
    dataset data;
    if (name == "mnist" || name == "fashion-mnist") data = load_mnist(dir, train);
    else if (name == "cifar10") data = load_cifar10(dir, train);
    else throw argument_error("unknown dataset '" + std::string(name) + "': expected mnist, fashion-mnist or cifar10");
    data.name = std::string(name) + (train ? "/train" : "/test");
    return data;
}

// The files `load_dataset(name, dir, train)` reads, for recording their SHA-256 (the
// watermark key names the exact data a model was trained on).
inline std::vector<std::filesystem::path> dataset_files(std::string_view name, const std::filesystem::path& dir,
                                                        bool train) {
    if (name == "cifar10") return detail::cifar10_files(detail::cifar10_batches_dir(dir), train);
    const std::string prefix = train ? "train" : "t10k";
    return {detail::find_idx_file(dir, prefix + "-images-idx3-ubyte"),
            detail::find_idx_file(dir, prefix + "-labels-idx1-ubyte")};
}

}  // namespace nnmark
