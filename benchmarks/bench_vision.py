"""Throughput of the radtool-vision classifier plugins: images/s for training and inference.

    python benchmarks/bench_vision.py                   # tiny archs, 64 px, on CPU (or the GPU if present)
    python benchmarks/bench_vision.py --device cuda     # default archs at 320 px + pipeline check

Per plugin it times full training steps (uint8 batch -> on-device augmentation and
normalisation -> forward, masked BCE, backward, AdamW) and inference steps (no grad) on random
images. It then runs the real ``train`` on a synthetic on-disk set twice over (epoch 1 fills the
uint8 memmap cache, epoch 2 is fed from it) and sets the cached epoch's images/s against the same
model's step throughput on random tensors in the same process: close figures mean the input
pipeline keeps up with the model. Prints figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import csv
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from radtool_vision.plugins import load_plugin
from radtool_vision.training import TrainConfig, masked_bce, train
from radtool_vision.transforms import augment_params, prepare_batch

TINY = {
    "convnext": "test_convnext",
    "densenet": "densenet121",
    "resnet": "resnet10t",
    "mobilenet": "mobilenetv3_small_050",
    "vgg": "vgg11",
    "efficientnet": "test_efficientnet",
    "fusion": "vgg11,resnet10t,test_convnext",
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_throughput(plugin_name: str, arch: str, size: int, batch: int, steps: int, device: torch.device,
                     n_classes: int = 4) -> tuple[float, float]:
    """(training images/s, inference images/s) on random uint8 images."""
    plugin = load_plugin(plugin_name)
    torch.manual_seed(0)
    model = plugin.create_model(arch, n_classes, pretrained=False).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model.to(memory_format=torch.channels_last)
    cfg = plugin.data_config(model, size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8)
    targets = torch.randint(0, 2, (batch, n_classes)).float().to(device)
    params = torch.from_numpy(augment_params(np.arange(batch), 1, 0))

    def train_step() -> None:
        x = prepare_batch(images, cfg, device, params, channels_last=cuda)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = model(x)
        total, count = masked_bce(logits, targets, None)
        opt.zero_grad(set_to_none=True)
        (total / count).backward()
        opt.step()

    @torch.no_grad()
    def infer_step() -> None:
        x = prepare_batch(images, cfg, device, channels_last=cuda)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            model(x)

    rates = []
    for step, mode in ((train_step, "train"), (infer_step, "eval")):
        getattr(model, mode)()
        for _ in range(2):  # warm-up (allocator, cudnn autotune, lazy init)
            step()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        rates.append(batch * steps / (time.perf_counter() - t0))
    return rates[0], rates[1]


def pipeline_check(plugin_name: str, arch: str, size: int, batch: int, n_images: int, device: str,
                   workers: int) -> tuple[float, float, float]:
    """(epoch-1 images/s incl. decoding into the cache, epoch-2 images/s from the cache, random-tensor images/s)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "vision"))
    from synthetic import CLASSES, make_dataset

    tmp = Path(tempfile.mkdtemp(prefix="bench_vision_"))
    try:
        n_patients = n_images // 2 + 1
        data = make_dataset(tmp / "data", n_patients, size=max(size, 64) * 2, seed=0, images_per_patient=(2, 2))
        run = tmp / "run"
        t0 = time.perf_counter()
        train(TrainConfig(
            plugin=plugin_name, arch=arch, data=data.csv, image_root=data.root, out=run, classes=list(CLASSES),
            val_fraction=0.1, image_size=size, epochs=2, batch_size=batch, pretrained=False, device=device,
            workers=workers, patience=5,
        ))
        wall = time.perf_counter() - t0
        rows = list(csv.DictReader(open(run / "history.csv")))
        epoch1, epoch2 = float(rows[0]["train_images_per_s"]), float(rows[1]["train_images_per_s"])
        print(f"  (whole train command incl. caching and validation: {wall:.1f}s for 2 epochs)")
        dev = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
        random_rate, _ = model_throughput(plugin_name, arch, size, batch, 10, dev, len(CLASSES))
        return epoch1, epoch2, random_rate
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--plugins", default=",".join(TINY), help="comma-separated plugin names")
    ap.add_argument("--image-size", type=int, default=None, help="default: 64 on CPU, 320 on GPU")
    ap.add_argument("--batch-size", type=int, default=None, help="default: 16 on CPU, 64 on GPU")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    ap.add_argument("--default-archs", action="store_true", help="use each plugin's default arch (GPU default)")
    ap.add_argument("--pipeline-images", type=int, default=None, help="synthetic images for the cache check")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the cache-vs-random-tensor check")
    args = ap.parse_args(argv)

    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    size = args.image_size or (320 if cuda else 64)
    batch = args.batch_size or (64 if cuda else 16)
    steps = args.steps or (20 if cuda else 5)
    use_default = args.default_archs or cuda
    gpu = torch.cuda.get_device_name(0) if cuda else "none"
    print(f"radtool-vision benchmark: device={device.type} ({gpu}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, {platform.processor() or platform.machine()}")
    print(f"input {size}x{size}, batch {batch}, {steps} timed steps, pretrained=False, random images")
    print(f"{'plugin':<13} {'arch':<32} {'train img/s':>12} {'infer img/s':>12}")
    for name in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        plugin = load_plugin(name)
        arch = plugin.default_arch if use_default else TINY.get(name, plugin.default_arch)
        try:
            tr, inf = model_throughput(name, arch, size, batch, steps, device)
            print(f"{name:<13} {arch:<32} {tr:>12.1f} {inf:>12.1f}", flush=True)
        except torch.OutOfMemoryError:
            print(f"{name:<13} {arch:<32} {'OOM':>12} {'OOM':>12}", flush=True)
            torch.cuda.empty_cache()

    if not args.no_pipeline:
        arch = "convnext_tiny" if cuda else "test_convnext"
        n_images = args.pipeline_images or (2048 if cuda else 256)
        print(f"\ninput pipeline check: convnext/{arch} at {size}px, real `train` on {n_images} synthetic PNGs "
              f"({2 * max(size, 64)}px on disk), batch {batch}")
        e1, e2, rnd = pipeline_check("convnext", arch, size, batch, n_images, device.type, workers=4 if cuda else 2)
        print(f"  epoch 1 (decode + fill cache) train img/s: {e1:.1f}")
        print(f"  epoch 2 (fed from uint8 memmap cache) train img/s: {e2:.1f}")
        print(f"  same model on random tensors     train img/s: {rnd:.1f}")
        print(f"  cached pipeline reaches {100 * e2 / rnd:.0f}% of the model-only throughput")


if __name__ == "__main__":
    main()
