// nnmark: the public API in one include.
//
// Rooms, from the bottom up (each includes only rooms below it):
//   core     tensor, shape, errors, rng, threads, workspace, atomic files, JSON, PNG,
//            the version (core/eigen_view.hpp, Eigen views of tensors, is opt-in: it
//            is the one header that needs Eigen, so it is not included here)
//   kernels  gemm (reference + fast), im2col
//   layers   conv2d, dense, relu, maxpool2d, dropout, flatten, batchnorm, global_avgpool2d, residual, loss
//   model    sequential, the paper's networks, safetensors model files
//   optim    sgd, adam, learning-rate schedules (they step a sequential model)
//   data     IDX and CIFAR-10 loaders, datasets, minibatches
//   train    trainer, data-parallel passes, evaluation, progress, checkpoints
//   watermark  triggers (content, unrelated, noise), key and commitment, embedding
//            schedule, verification statistics
//   attacks  removal attacks on a watermark: magnitude pruning, fine-tuning (FTLL, FTAL,
//            RTLL, RTAL), fine-pruning, distillation, input transformations; the
//            attacker's data split and the removed / survived verdict
//   serve    TensorFlow Serving's REST API: its URLs, predict requests (row or columnar,
//            JSON or base64 PNG images) and answers, classify, model metadata, the
//            server's request handling, and the remote query plan that hides a key's
//            triggers among decoys (the HTTP itself is the tool's);
//            DAWN's keyed altered answers, their registry and its statistic
//   report   line charts as SVG documents (the figures of `nnmark reproduce` and
//            `nnmark study`)
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/half_float.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/core/parallel.hpp"
#include "nnmark/core/png.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/sha256.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/core/stb.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/core/version.hpp"
#include "nnmark/core/workspace.hpp"
#include "nnmark/kernels/conv_nhwc.hpp"
#include "nnmark/kernels/dot_gemm.hpp"
#include "nnmark/kernels/gemm.hpp"
#include "nnmark/kernels/im2col.hpp"
#include "nnmark/kernels/positive_part.hpp"
#include "nnmark/layers/batchnorm.hpp"
#include "nnmark/layers/conv2d.hpp"
#include "nnmark/layers/dense.hpp"
#include "nnmark/layers/dropout.hpp"
#include "nnmark/layers/flatten.hpp"
#include "nnmark/layers/global_avgpool2d.hpp"
#include "nnmark/layers/initializers.hpp"
#include "nnmark/layers/layer.hpp"
#include "nnmark/layers/maxpool2d.hpp"
#include "nnmark/layers/relu.hpp"
#include "nnmark/layers/residual.hpp"
#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/optim/adam.hpp"
#include "nnmark/optim/optimizer.hpp"
#include "nnmark/optim/schedule.hpp"
#include "nnmark/optim/sgd.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/model_digest.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/model/model_preprocessing.hpp"
#include "nnmark/model/paper_models.hpp"
#include "nnmark/model/safetensors.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/data/batches.hpp"
#include "nnmark/data/cifar10.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/data/idx.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/train/checkpoint.hpp"
#include "nnmark/train/data_parallel.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/train/trainer.hpp"
#include "nnmark/watermark/bitmap_font.hpp"
#include "nnmark/watermark/content_trigger.hpp"
#include "nnmark/watermark/embed.hpp"
#include "nnmark/watermark/embed_schedule.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/mosaic.hpp"
#include "nnmark/watermark/extraction_region.hpp"
#include "nnmark/watermark/false_accusation.hpp"
#include "nnmark/watermark/natural_trigger.hpp"
#include "nnmark/watermark/noise_trigger.hpp"
#include "nnmark/watermark/secret_choices.hpp"
#include "nnmark/watermark/statistics.hpp"
#include "nnmark/watermark/suspect_checks.hpp"
#include "nnmark/watermark/trigger.hpp"
#include "nnmark/watermark/trigger_ledger.hpp"
#include "nnmark/watermark/trigger_set.hpp"
#include "nnmark/watermark/unrelated_trigger.hpp"
#include "nnmark/watermark/unspent_triggers.hpp"
#include "nnmark/watermark/verify.hpp"
#include "nnmark/attacks/attacked_service.hpp"
#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/attacks/distill.hpp"
#include "nnmark/attacks/evading_service.hpp"
#include "nnmark/attacks/extraction_pool.hpp"
#include "nnmark/attacks/finetune.hpp"
#include "nnmark/attacks/fineprune.hpp"
#include "nnmark/attacks/prune.hpp"
#include "nnmark/attacks/query_detectors.hpp"
#include "nnmark/attacks/removal_attack.hpp"
#include "nnmark/attacks/transform.hpp"
#include "nnmark/attacks/verdict.hpp"
#include "nnmark/serve/base64.hpp"
#include "nnmark/serve/classify_api.hpp"
#include "nnmark/serve/dawn_answers.hpp"
#include "nnmark/serve/dawn_extraction.hpp"
#include "nnmark/serve/dawn_registry.hpp"
#include "nnmark/serve/dawn_statistics.hpp"
#include "nnmark/serve/model_metadata.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/predict_response.hpp"
#include "nnmark/serve/prediction_client.hpp"
#include "nnmark/serve/prediction_service.hpp"
#include "nnmark/serve/query_plan.hpp"
#include "nnmark/serve/remote_verification.hpp"
#include "nnmark/serve/tf_serving_paths.hpp"
#include "nnmark/report/line_chart.hpp"
