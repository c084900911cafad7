"""Throughput of the radtool-vision classifier plugins: images/s for training and inference.

    python benchmarks/bench_vision.py                   # tiny archs, 64 px, on CPU (or the GPU if present)
    python benchmarks/bench_vision.py --device cuda     # default archs at 320 px + pipeline check
    bash benchmarks/gpu_check.sh                        # the whole GPU check of issue 8, with the plain-timm anchor

Per plugin it times full training steps (uint8 batch -> on-device augmentation and
normalisation -> forward, masked BCE, backward, AdamW) and inference steps (no grad) on random
images. It then decodes a synthetic on-disk set into the uint8 memmap cache (timed), runs the real
``train`` fed from that cache and sets its best epoch's images/s against the same model's step
throughput on random tensors in the same process: close figures mean the input
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

from radtool_vision.optim import create_optimizer, create_scheduler
from radtool_vision.plugins import load_plugin
from radtool_vision.runtime import resolve_precision
from radtool_vision.training import StepContext, TrainConfig, train, train_step
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
                     n_classes: int = 4, repeats: int = 3, compile_model: bool = False) -> dict[str, float]:
    """Training and inference images/s on random uint8 images, best of ``repeats`` timings.

    The training step is the trainer's own (:func:`radtool_vision.training.train_step`: the run's
    precision, timm AdamW fused on CUDA, on-device augmentation); with ``compile_model`` the model is
    ``torch.compile``d as in training, and ``first_step_s`` is the time of the first step (compilation).
    """
    plugin = load_plugin(plugin_name)
    torch.manual_seed(0)
    model = plugin.create_model(arch, n_classes, pretrained=False)
    precision = resolve_precision(device)
    precision.prepare_model(model, device)
    cfg = plugin.data_config(model, size)
    cuda = device.type == "cuda"
    optimizer = create_optimizer(model, 1e-4, 0.05, cuda)
    step_model = torch.compile(model) if compile_model else model
    ctx = StepContext(step_model, optimizer, create_scheduler(optimizer, 1e-4, 0, 10**6), precision, cfg, device)
    images = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8)
    targets = torch.randint(0, 2, (batch, n_classes)).float()
    params = torch.from_numpy(augment_params(np.arange(batch), 1, 0))
    if cuda:
        images, targets, params = images.pin_memory(), targets.pin_memory(), params.pin_memory()
        torch.cuda.reset_peak_memory_stats(device)
    known = batch * n_classes

    def train_once() -> None:
        train_step(ctx, images, targets, params, known)

    @torch.no_grad()
    def infer_once() -> None:
        x = prepare_batch(images, cfg, device, channels_last=precision.channels_last)
        with precision.autocast():
            model(x)

    out: dict[str, float] = {}
    for name, step, mode in (("train", train_once, "train"), ("infer", infer_once, "eval")):
        model.train(mode == "train")
        t0 = time.perf_counter()
        step()
        _sync(device)
        if name == "train":
            out["first_step_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(20):  # warm-up: allocator, oneDNN/cuDNN kernel selection, lazy init
            step()
            if i >= 2 and time.perf_counter() - t0 > 1.0:
                break
        best = 0.0
        for _ in range(repeats):  # best of a few: the figure is what the code can do, not the noise
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            _sync(device)
            best = max(best, batch * steps / (time.perf_counter() - t0))
        out[name] = best
    if cuda:
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def pipeline_check(plugin_name: str, arch: str, size: int, batch: int, n_images: int, device: str,
                   workers: int, compile_model: bool = False, epochs: int = 3) -> tuple[float, float, float]:
    """(images/s decoding into the cache, training images/s fed from the cache, same on random tensors)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "vision"))
    from synthetic import CLASSES, make_dataset

    tmp = Path(tempfile.mkdtemp(prefix="bench_vision_"))
    try:
        n_patients = n_images // 2 + 1
        data = make_dataset(tmp / "data", n_patients, size=max(size, 64) * 2, seed=0, images_per_patient=(2, 2))
        run = tmp / "run"
        from radtool_vision.cache import load_or_build
        from radtool_vision.data import load_image_table

        paths = load_image_table(data.csv, data.root).paths
        t0 = time.perf_counter()
        load_or_build(paths, size, tmp / "decode-only", workers)  # train builds its own per-split caches
        decode_rate = len(paths) / (time.perf_counter() - t0)
        train(TrainConfig(
            plugin=plugin_name, arch=arch, data=data.csv, image_root=data.root, out=run, classes=list(CLASSES),
            val_fraction=0.1, image_size=size, epochs=epochs, batch_size=batch, pretrained=False, device=device,
            workers=workers, patience=epochs + 1, compile=compile_model,
        ))
        rows = list(csv.DictReader(open(run / "history.csv")))
        cached = max(float(r["train_images_per_s"]) for r in rows)
        dev = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
        random_rate = model_throughput(plugin_name, arch, size, batch, 10, dev, len(CLASSES),
                                       compile_model=compile_model)["train"]
        return decode_rate, cached, random_rate
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--plugins", default=",".join(TINY), help="comma-separated plugin names")
    ap.add_argument("--image-size", type=int, default=None, help="default: 64 on CPU, 320 on GPU")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="default: 16 on CPU; on GPU each family's default training batch (256; vgg, fusion 128)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    ap.add_argument("--default-archs", action="store_true", help="use each plugin's default arch (GPU default)")
    ap.add_argument("--compile", default="no", choices=["no", "yes", "both"], help="torch.compile the step")
    ap.add_argument("--pipeline-plugins", default="convnext", help="plugins for the cache-vs-model-only check")
    ap.add_argument("--pipeline-images", type=int, default=None, help="synthetic images for the cache check")
    ap.add_argument("--pipeline-compile", action="store_true", help="compile in the cache check (as train on CUDA)")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the cache-vs-random-tensor check")
    args = ap.parse_args(argv)

    from radtool_vision.optim import default_batch_size

    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    size = args.image_size or (320 if cuda else 64)
    steps = args.steps or (20 if cuda else 5)
    use_default = args.default_archs or cuda
    gpu = torch.cuda.get_device_name(0) if cuda else "none"
    modes = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
    print(f"radtool-vision benchmark: device={device.type} ({gpu}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, {platform.processor() or platform.machine()}")
    precision = resolve_precision(device)
    print(f"input {size}x{size}, {steps} timed steps, pretrained=False, random images, "
          f"amp={precision.amp_dtype}, channels_last={precision.channels_last}")

    def batch_for(name: str) -> int:
        if args.batch_size:
            return args.batch_size
        return default_batch_size(getattr(load_plugin(name), "cuda_batch_size", 128), size, True) if cuda else 16

    print(f"{'plugin':<13} {'arch':<30} {'batch':>5} {'compile':>7} {'train img/s':>12} {'infer img/s':>12} "
          f"{'1st step s':>10} {'peak GiB':>8}")
    for name in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        plugin = load_plugin(name)
        arch = plugin.default_arch if use_default else TINY.get(name, plugin.default_arch)
        batch = batch_for(name)
        for compiled in modes:
            try:
                r = model_throughput(name, arch, size, batch, steps, device, compile_model=compiled)
                print(f"{name:<13} {arch:<30} {batch:>5} {str(compiled):>7} {r['train']:>12.1f} {r['infer']:>12.1f} "
                      f"{r['first_step_s']:>10.1f} {r.get('peak_gib', float('nan')):>8.1f}", flush=True)
            except torch.cuda.OutOfMemoryError:
                print(f"{name:<13} {arch:<30} {batch:>5} {str(compiled):>7} {'OOM':>12}", flush=True)
                torch.cuda.empty_cache()

    if not args.no_pipeline:
        for name in [p.strip() for p in args.pipeline_plugins.split(",") if p.strip()]:
            plugin = load_plugin(name)
            arch = plugin.default_arch if use_default else TINY.get(name, plugin.default_arch)
            batch = batch_for(name)
            n_images = args.pipeline_images or (4096 if cuda else 256)
            print(f"\ninput pipeline check: {name}/{arch} at {size}px, real `train` on {n_images} synthetic PNGs "
                  f"({2 * max(size, 64)}px on disk), batch {batch}, compile={args.pipeline_compile}", flush=True)
            dec, cached, rnd = pipeline_check(name, arch, size, batch, n_images, device.type,
                                              workers=8 if cuda else 2, compile_model=args.pipeline_compile)
            print(f"  decode + resize into the uint8 cache (once):   {dec:10.1f} img/s")
            print(f"  training fed from the memmap cache (best epoch): {cached:8.1f} img/s")
            print(f"  same model, random tensors, same process:       {rnd:9.1f} img/s")
            print(f"  the cached pipeline reaches {100 * cached / rnd:.0f}% of the model-only training throughput",
                  flush=True)


if __name__ == "__main__":
    main()
