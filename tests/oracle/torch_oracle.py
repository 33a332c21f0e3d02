#!/usr/bin/env python3
"""The PyTorch oracle: rebuild an nnmark model in PyTorch and compute what nnmark must match.

Usage: torch_oracle.py MODEL.safetensors BATCH.safetensors OUT.safetensors
       torch_oracle.py --predict MODEL.safetensors IMAGES-IDX OUT.csv

MODEL is an nnmark model file (its "nnmark.architecture" metadata says which layers to
build; the tensors are loaded by name into an nn.Sequential, as PyTorch's own
state_dict names them). BATCH holds "input" [N, C, H, W] (F32) and "labels" [N] (I64).
OUT receives "logits", "loss" and "grad.<parameter name>" for every parameter: the
gradients of the mean cross-entropy, computed in training mode. With --predict, the
oracle is a PyTorch user: it reads the raw images of an IDX file (MNIST's
t10k-images-idx3-ubyte), prepares them as the model file's "nnmark.preprocessing"
metadata says (pixel * scale - mean) / std, channels first, and writes every image's
logits in eval mode, one CSV row each (index,logit_0,...). The safetensors files
are read and written here with the standard library (the format is simple), so the
oracle needs nothing beyond torch.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "U8": torch.uint8}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    data = open(path, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__", {})
    base = 8 + length
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = bytearray(data[base + begin : base + end])
        tensors[name] = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).clone()
    return tensors, metadata


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class Residual(torch.nn.Sequential):
    """nnmark's residual block: the inner layers' output plus the block's input. As a
    Sequential its parameters are named <block>.<inner index>.<name>, as nnmark names them."""

    def forward(self, x):
        return x + super().forward(x)


class GlobalAvgPool(torch.nn.Module):
    """nnmark's global_avgpool2d: [N, C, H, W] -> [N, C], the mean of each plane."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def build_layers(specs, shape):
    """The modules of `specs` (architecture layer entries), in order, for inputs of `shape`
    (a dict of channels, height, width, and features once flat); updates `shape`."""
    layers = []
    for spec in specs:
        kind = spec["kind"]
        if kind == "conv2d":
            k, s = spec["kernel"], spec["stride"]
            layers.append(torch.nn.Conv2d(shape["channels"], spec["out_channels"], k, stride=s, padding=0 if spec["padding"] == "valid" else "same"))
            if spec["padding"] == "valid":
                shape["height"], shape["width"] = (shape["height"] - k) // s + 1, (shape["width"] - k) // s + 1
            shape["channels"] = spec["out_channels"]
        elif kind == "maxpool2d":
            size, stride = spec["size"], spec["stride"] or spec["size"]
            layers.append(torch.nn.MaxPool2d(size, stride))
            shape["height"], shape["width"] = (shape["height"] - size) // stride + 1, (shape["width"] - size) // stride + 1
        elif kind == "relu":
            layers.append(torch.nn.ReLU())
        elif kind == "flatten":
            layers.append(torch.nn.Flatten())
            shape["features"] = shape["channels"] * shape["height"] * shape["width"]
        elif kind == "global_avgpool2d":
            layers.append(GlobalAvgPool())
            shape["features"] = shape["channels"]
        elif kind == "dense":
            layers.append(torch.nn.Linear(shape["features"], spec["out_features"]))
            shape["features"] = spec["out_features"]
        elif kind == "dropout":
            layers.append(torch.nn.Dropout(spec["rate"]))
        elif kind == "batchnorm":
            flat = shape["features"] is not None
            norm = torch.nn.BatchNorm1d if flat else torch.nn.BatchNorm2d
            layers.append(norm(shape["features"] if flat else shape["channels"], eps=spec["eps"], momentum=spec["momentum"]))
        elif kind == "residual":
            layers.append(Residual(*build_layers(spec["layers"], dict(shape))))  # the block keeps the shape
        else:
            raise SystemExit(f"torch_oracle: unknown layer kind {kind}")
    return layers


def build(architecture):
    """nn.Sequential with the same layers, in the same order, as the nnmark model."""
    channels, height, width = architecture["input"]
    shape = {"channels": channels, "height": height, "width": width, "features": None}
    return torch.nn.Sequential(*build_layers(architecture["layers"], shape))


def read_idx_images(path):
    """The uint8 images of an IDX file ([N, H, W] or [N, C, H, W]) as a tensor [N, C, H, W]."""
    data = open(path, "rb").read()
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise SystemExit(f"torch_oracle: {path} is not an IDX file of unsigned bytes")
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4 : 4 + 4 * rank])
    images = torch.frombuffer(bytearray(data[4 + 4 * rank :]), dtype=torch.uint8).reshape(dims)
    return images.unsqueeze(1) if rank == 3 else images


def predict(model_path, images_path, out_path):
    weights, metadata = read_safetensors(model_path)
    net = build(json.loads(metadata["nnmark.architecture"]))
    net.load_state_dict(weights, strict=False)
    net.eval()
    prep = json.loads(metadata["nnmark.preprocessing"])
    if prep["layout"] != "NCHW":
        raise SystemExit(f"torch_oracle: layout {prep['layout']} is not NCHW")
    mean = torch.tensor(prep["mean"]).reshape(1, -1, 1, 1)
    std = torch.tensor(prep["std"]).reshape(1, -1, 1, 1)
    inputs = (read_idx_images(images_path).float() * prep["scale"] - mean) / std
    with torch.no_grad():
        logits = torch.cat([net(inputs[i : i + 500]) for i in range(0, len(inputs), 500)])
    with open(out_path, "w") as out:
        out.write("index," + ",".join(f"logit_{k}" for k in range(logits.shape[1])) + "\n")
        for i, row in enumerate(logits.tolist()):
            out.write(f"{i}," + ",".join(repr(v) for v in row) + "\n")


def main():
    if sys.argv[1] == "--predict":
        return predict(*sys.argv[2:5])
    model_path, batch_path, out_path = sys.argv[1:4]
    weights, metadata = read_safetensors(model_path)
    net = build(json.loads(metadata["nnmark.architecture"]))
    net.load_state_dict(weights, strict=False)
    missing = set(net.state_dict()) - set(weights) - {k for k in net.state_dict() if k.endswith("num_batches_tracked")}
    if missing:
        raise SystemExit(f"torch_oracle: the model file lacks {sorted(missing)}")
    batch, _ = read_safetensors(batch_path)
    net.train()
    logits = net(batch["input"])
    loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
    loss.backward()
    result = {"logits": logits, "loss": loss.reshape(1)}
    for name, p in net.named_parameters():
        result["grad." + name] = p.grad
    write_safetensors(out_path, result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
