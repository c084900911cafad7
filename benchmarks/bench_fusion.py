"""Report + image fusion against image-only, and the leaky setting, on an unseen split.

    python benchmarks/bench_fusion.py                                        # synthetic reports, 3 seeds
    python benchmarks/bench_fusion.py --reports corpora/openi/reports.csv    # the bundled OpenI reports
    python benchmarks/bench_fusion.py --real-images ../shared/data/cxr-images  # + predict/explain on real films

Each report is a CSV row with ``indication``, ``findings`` and ``impression`` columns, parsed by the
real ``radtool parse --text-col indication --text-col findings --text-col impression``; the labels
the models learn are the parse's ``labels.csv`` (extracted from FINDINGS / IMPRESSION), joined to
one image per report by an image index, as a user would run it. Images are synthetic radiographs
(``tests/vision/synthetic.py``) with the report's findings planted.

* synthetic reports (this script's generator): the INDICATION carries real but partial signal
  ("Eval pleural effusion." for 55 % of effusion cases and 12 % of the others, generic requests
  otherwise, 10 % without any request), FINDINGS / IMPRESSION state the labels; 25 % of the
  findings are occult (not planted in the image), so the image alone cannot be perfect;
* OpenI (``--reports``): the real reports and their real indications; images planted from the
  parsed labels.

Three settings per seed, same data and seeds: image only; fusion on the request sections (the
default); fusion on FINDINGS (``--allow-label-sections``: the labels' own section, LEAKY). Macro
AUROC on the test reports (never seen in training or validation). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "vision"))
from synthetic import radiograph  # noqa: E402  (the image generator the tests use)

CLASSES = ("Pleural Effusion", "Pneumothorax", "Pneumonia", "Cardiomegaly")
REQUESTS = {
    "Pleural Effusion": ("Eval pleural effusion.", "Dyspnea, ? effusion.", "Follow up pleural effusion."),
    "Pneumothorax": ("Rule out pneumothorax.", "Chest tube in place, assess for pneumothorax.", "Sudden pleuritic pain, ? PTX."),
    "Pneumonia": ("Fever and cough, ? pneumonia.", "Evaluate for infiltrate.", "Productive cough and fever."),
    "Cardiomegaly": ("Congestive heart failure.", "Evaluate heart size.", "CHF follow-up."),
}
GENERIC = ("Chest pain.", "Shortness of breath.", "Preoperative evaluation.", "Routine exam.", "Follow-up.",
           "Trauma.", "Weakness.")
FINDING_TEXT = {
    "Pleural Effusion": (("Small left pleural effusion.", "Moderate right pleural effusion."), "No pleural effusion."),
    "Pneumothorax": (("Small right apical pneumothorax.", "Left pneumothorax."), "No pneumothorax."),
    "Pneumonia": (("Right lower lobe pneumonia.", "Left lower lobe pneumonia."), "No pneumonia."),
    "Cardiomegaly": (("The heart is enlarged.", "Cardiomegaly."), "Heart size is normal."),
}
IMPRESSION_TEXT = {"Pleural Effusion": "Pleural effusion.", "Pneumothorax": "Pneumothorax.",
                   "Pneumonia": "Pneumonia.", "Cardiomegaly": "Cardiomegaly."}
SETTINGS = (
    ("image only", None),
    ("fusion, request sections", "INDICATION,HISTORY,CLINICAL INFORMATION,COMPARISON"),
    ("fusion, FINDINGS (LEAKY)", "FINDINGS"),
)


def synthetic_reports(n: int, seed: int, p_request: float = 0.55, p_false: float = 0.12,
                      p_no_request: float = 0.10, prevalence: float = 0.3) -> tuple[list[dict], np.ndarray]:
    """Report rows and the true findings (n, len(CLASSES))."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for i in range(n):
        present = [bool(rng.random() < prevalence) for _ in CLASSES]
        requests = []
        for name, pos in zip(CLASSES, present):
            if rng.random() < (p_request if pos else p_false):
                requests.append(REQUESTS[name][rng.integers(len(REQUESTS[name]))])
        if not requests or rng.random() < 0.3:
            requests.insert(0, GENERIC[rng.integers(len(GENERIC))])
        if rng.random() < p_no_request:
            requests = []
        findings = [FINDING_TEXT[c][0][rng.integers(2)] if pos else FINDING_TEXT[c][1] for c, pos in zip(CLASSES, present)]
        rng.shuffle(findings)
        impression = " ".join(IMPRESSION_TEXT[c] for c, pos in zip(CLASSES, present) if pos) or "No acute cardiopulmonary process."
        rows.append({"report_id": f"S{i:05d}", "indication": " ".join(requests), "findings": " ".join(findings),
                     "impression": impression})
        truth.append(present)
    return rows, np.array(truth, dtype=bool)


def write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def radtool_parse(reports: Path, out: Path) -> float:
    """The real parser, as a user runs it; returns its wall time."""
    exe = shutil.which("radtool") or str(Path(sys.executable).parent / "radtool")
    cmd = [exe, "parse", str(reports), "--text-col", "indication", "--text-col", "findings",
           "--text-col", "impression", "--out", str(out), "-q"]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"radtool parse failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def parsed_labels(parse_dir: Path) -> dict[str, dict[str, str]]:
    with open(parse_dir / "labels.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        id_col = reader.fieldnames[0]
        return {r[id_col]: r for r in reader}


def write_images(root: Path, ids: list[str], planted: np.ndarray, size: int, seed: int) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    rels = []
    for rid, row in zip(ids, planted):
        rel = f"images/{rid}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(radiograph(dict(zip(CLASSES, map(bool, row))), size, rng)).save(root / rel)
        rels.append(rel)
    return rels


def build(work: Path, args) -> dict:
    """Reports -> radtool parse -> labels + images + train/test image indexes."""
    work.mkdir(parents=True, exist_ok=True)
    if args.reports:
        with open(args.reports, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.DictReader(fh)]
        for r in rows:
            r["report_id"] = r.get("report_id") or r.get("id")
        truth = None
    else:
        rows, truth = synthetic_reports(args.n, args.data_seed)
    write_csv(work / "reports.csv", ["report_id", "indication", "findings", "impression"], rows)
    parse_dir = work / "parsed"
    parse_s = radtool_parse(work / "reports.csv", parse_dir)
    labels = parsed_labels(parse_dir)
    ids = [r["report_id"] for r in rows if r["report_id"] in labels]
    parsed = np.array([[labels[i].get(c, "") in ("1", "1.0") for c in CLASSES] for i in ids], dtype=bool)
    rng = np.random.default_rng(args.data_seed + 1)
    if truth is not None:
        agree = float((parsed == truth).mean())
        planted = truth & (rng.random(truth.shape) >= args.occult)  # occult findings: in the report, not in the image
    else:
        agree = None
        keep = parsed.any(axis=1) | (rng.random(len(ids)) < args.openi_negatives)  # every positive, some negatives
        ids, parsed = [i for i, k in zip(ids, keep) if k], parsed[keep]
        planted = parsed
    rels = write_images(work, ids, planted, args.size, args.data_seed)
    order = rng.permutation(len(ids))
    n_test = int(round(args.test_fraction * len(ids)))
    split = {"test": sorted(order[:n_test]), "train": sorted(order[n_test:])}
    for name, idx in split.items():
        write_csv(work / f"{name}_index.csv", ["Path", "report_id", "patient_id"],
                  [{"Path": rels[i], "report_id": ids[i], "patient_id": ids[i]} for i in idx])
    prevalence = {c: int(parsed[:, j].sum()) for j, c in enumerate(CLASSES)}
    return {"parse_dir": parse_dir, "parse_s": parse_s, "agree": agree, "n": len(ids),
            "n_train": len(split["train"]), "n_test": len(split["test"]), "prevalence": prevalence}


def run_setting(work: Path, data: dict, seed: int, sections: str | None, args, classes: list[str]) -> float:
    from radtool_vision.inference import evaluate
    from radtool_vision.training import TrainConfig, train

    tag = "image" if sections is None else sections.split(",")[0].lower()
    out = work / "runs" / f"{tag}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    text = {} if sections is None else dict(
        text=data["parse_dir"], text_sections=sections, allow_label_sections=sections == "FINDINGS",
        text_fusion=args.text_fusion)
    cfg = TrainConfig(plugin=args.plugin, arch=args.arch, data=data["parse_dir"] / "labels.csv", image_root=work,
                      image_index=work / "train_index.csv", out=out, classes=classes, image_size=args.size,
                      epochs=args.epochs, batch_size=32, lr=3e-3, pretrained=False, device="cpu", workers=1,
                      val_fraction=0.15, seed=seed, patience=args.epochs, **text)
    train(cfg)
    report = evaluate(out, data["parse_dir"] / "labels.csv", work / "eval" / out.name, image_root=work,
                      image_index=work / "test_index.csv", device="cpu", workers=0,
                      text=None if sections is None else data["parse_dir"])
    return report["at_0.5"]["macro"]["auroc"]


def real_images(run: Path, images: Path, work: Path) -> None:
    """predict (images alone: no report for these films) and explain on the real radiographs."""
    from radtool_vision.explain import explain
    from radtool_vision.inference import predict

    t0 = time.perf_counter()
    res = predict(run, images, work / "real_predictions.csv", device="cpu", workers=0)
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".dcm"))[:2]
    written = explain(run, files, work / "real_cams", device="cpu")
    print(f"real radiographs: predict {res['n_images']} images ({res['n_errors']} unreadable) without text, "
          f"explain {len(written)} heat maps, {time.perf_counter() - t0:.1f}s -> {work}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=Path, help="a reports CSV with indication/findings/impression (OpenI layout)")
    ap.add_argument("--n", type=int, default=600, help="synthetic reports (one image each)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--plugin", default="convnext")
    ap.add_argument("--text-fusion", default="concat", choices=("concat", "gated"))
    ap.add_argument("--arch", default="test_convnext")
    ap.add_argument("--occult", type=float, default=0.25, help="fraction of findings not planted in the image")
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--openi-negatives", type=float, default=0.15, help="OpenI: fraction of all-negative reports kept")
    ap.add_argument("--classes", default=None, help="comma-separated (default: the four planted findings)")
    ap.add_argument("--real-images", type=Path, help="folder of real radiographs for predict/explain with the seed-0 fusion run")
    ap.add_argument("--work", type=Path, help="keep everything here (default: a temporary folder)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="bench_fusion_")
    work = args.work or Path(tmp.name)
    t0 = time.perf_counter()
    data = build(work, args)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else list(CLASSES)
    source = str(args.reports) if args.reports else f"synthetic generator (data seed {args.data_seed}, occult {args.occult:.0%})"
    print(f"reports: {source}; {data['n']} reports/images ({data['n_train']} train+val, {data['n_test']} test), "
          f"positives {data['prevalence']}; parse {data['parse_s']:.1f}s"
          + (f"; parsed labels agree with the generator on {data['agree']:.1%} of cells" if data["agree"] is not None else ""))
    print(f"model: {args.plugin}/{args.arch}, {args.size}px, {args.epochs} epochs, batch 32, lr 3e-3, pretrained=False, CPU; "
          f"text: hashed entity/certainty/relation/word features, 4096 dims, MLP 256, "
          f"{args.text_fusion}, text dropout 0.25")
    results: dict[str, list[float]] = {name: [] for name, _ in SETTINGS}
    for seed in args.seeds:
        for name, sections in SETTINGS:
            auroc = run_setting(work, data, seed, sections, args, classes)
            results[name].append(auroc)
            print(f"  seed {seed}  {name:<28} macro AUROC {auroc:.3f}", flush=True)
    print(f"\nmacro AUROC on the unseen test split ({data['n_test']} images), seeds {args.seeds}:")
    print(f"| setting | {' | '.join(f'seed {s}' for s in args.seeds)} | mean |")
    print(f"|---|{'---|' * len(args.seeds)}---|")
    for name, values in results.items():
        print(f"| {name} | {' | '.join(f'{v:.3f}' for v in values)} | {np.mean(values):.3f} |")
    gain = np.mean(results[SETTINGS[1][0]]) - np.mean(results[SETTINGS[0][0]])
    print(f"fusion (request) - image only: {gain:+.3f} mean macro AUROC; "
          "the FINDINGS row is LEAKY: the labels were extracted from that section, so it reads the answer")
    if args.real_images:
        real_images(work / "runs" / f"indication-seed{args.seeds[0]}", args.real_images, work)
    print(f"total {time.perf_counter() - t0:.0f}s")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
