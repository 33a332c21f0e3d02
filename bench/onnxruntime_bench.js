#!/usr/bin/env node
// onnxruntime_bench: the ONNX Runtime side of nnmark's inference comparison
// (scripts/bench.sh runs nnmark, PyTorch and this one after the other).
//
//   node onnxruntime_bench.js --model NET.onnx --batch N --threads T [--seconds S]
//
// NET.onnx is the paper network exported from PyTorch (bench/torch_bench.py export,
// opset 13, a dynamic batch axis). Inputs are random in [0, 1). The session runs on the
// CPU execution provider with T intra-op threads, one inter-op thread, sequential
// execution and every graph optimisation, as ONNX Runtime's CPU tuning guide advises
// for latency. Timing as bench/bench_models.cpp and torch_bench.py: warm-up runs (at
// least 2 and 15% of S), then 3 windows of S/3 seconds (each at least one run); prints
// one JSON line with the best window's images/s and the mean over the windows.
// Needs the npm package onnxruntime-node (scripts/bench.sh installs it with
// --ignore-scripts: its CPU binaries ship inside the package); NODE_PATH finds it.
'use strict';

const ort = require('onnxruntime-node');

function parseArguments(argv) {
  const options = { seconds: 5 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--model') options.model = value;
    else if (flag === '--batch') options.batch = Number(value);
    else if (flag === '--threads') options.threads = Number(value);
    else if (flag === '--seconds') options.seconds = Number(value);
    else throw new Error(`unknown option ${flag}`);
  }
  for (const name of ['model', 'batch', 'threads'])
    if (options[name] === undefined || (name !== 'model' && !(options[name] >= 1)))
      throw new Error(`--${name} is required (a positive number for --batch and --threads)`);
  return options;
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const session = await ort.InferenceSession.create(options.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: options.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inputName = session.inputNames[0];
  const meta = session.inputMetadata ? session.inputMetadata[0] : undefined;
  // The item shape [C, H, W] from the model's input; the batch axis is dynamic.
  const item = meta && meta.shape ? meta.shape.slice(1).map(Number) : null;
  if (!item || item.some((d) => !(d >= 1))) throw new Error(`cannot read the input shape of ${options.model}`);
  const count = options.batch * item.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; ++i) data[i] = Math.random();
  const feeds = { [inputName]: new ort.Tensor('float32', data, [options.batch, ...item]) };

  const now = () => Number(process.hrtime.bigint()) / 1e9;
  const runFor = async (seconds, minimumRuns) => {
    const start = now();
    let runs = 0;
    while (runs < minimumRuns || now() - start < seconds) {
      await session.run(feeds);
      ++runs;
    }
    return (runs * options.batch) / (now() - start);
  };
  await runFor(0.15 * options.seconds, 2);
  const windows = [];
  for (let w = 0; w < 3; ++w) windows.push(await runFor(options.seconds / 3, 1));
  console.log(JSON.stringify({
    framework: 'onnxruntime',
    version: require('onnxruntime-node/package.json').version,
    mode: 'infer',
    batch: options.batch,
    threads: options.threads,
    images_per_second: Math.max(...windows),
    mean_images_per_second: windows.reduce((a, b) => a + b, 0) / windows.length,
  }));
}

main().catch((error) => {
  console.error(`onnxruntime_bench: ${error.message}`);
  process.exit(1);
});
