"""Make an archive-like report corpus from the bundled OpenI reports, of any size.

    python benchmarks/gen_corpus.py --reports 40000 --out /tmp/archive40k.csv [--seed 0]

OpenI repeats its sentences 2.8 times on average, which flatters a parser that memoizes sentences. A
hospital archive repeats less: the same findings come back with new measurements, dates, sides and
modifiers. Each generated report takes the shape of a random OpenI report (how many findings and
impression sentences) and fills every sentence slot with an OpenI sentence drawn by its frequency;
then

* ``--perturb`` (default 0.40) of the sentences are perturbed: new measurements and sizes, a
  comparison date, laterality swapped or added, severity / course modifiers, vertebral levels;
* ``--join`` (default 0.28) of the others are recombined with the next sentence into one
  ("No pneumothorax and the heart is normal in size.").

The result is written as CSV (report_id, findings, impression) and the script prints the fraction of
distinct sentences (whitespace-normalized, split like the generator splits them) over the corpus;
about 0.55-0.60 with the defaults at 4,000-200,000 reports. Same ``--seed``, same file, byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_NUMBER = re.compile(r"\d{1,2}\.")
_MEASURE = re.compile(r"\b\d+(?:\.\d+)?\s?(?:cm|mm)\b")
_SIDE = re.compile(r"\b(left|right|Left|Right)\b")
_SIZE = re.compile(r"\b(small|moderate|large|mild|minimal|trace|tiny|Small|Moderate|Large|Mild|Minimal)\b")
_FINDING = re.compile(r"\b(effusion|opacity|opacities|atelectasis|consolidation|nodule|infiltrate|scarring|"
                      r"granuloma|pneumothorax|edema|cardiomegaly|density|thickening|emphysema)\b")
_ANATOMY = re.compile(r"\b(lung|base|apex|hemithorax|hemidiaphragm|lobe|costophrenic angle|hilum)\b")
_LEVEL = re.compile(r"\b[TL]\d{1,2}\b")
SIZES = ("small", "moderate", "large", "mild", "minimal", "trace", "tiny")
MODIFIERS = ("mild", "minimal", "subtle", "stable", "new", "persistent", "unchanged", "slightly increased",
             "slightly decreased", "patchy", "streaky", "chronic", "residual", "faint", "possible")
SIDES = ("left", "right", "bilateral")
DATE_FORMS = ("Compared to {d}, ", "Since the examination of {d}, ", "As on {d}, ", "Unchanged from {d}: ")


def sentences(text: str) -> list[str]:
    text = " ".join((text or "").split())
    out: list[str] = []
    for part in _SPLIT.split(text) if text else []:
        if out and _NUMBER.fullmatch(out[-1]):  # "1. Bullous emphysema.": the list number stays with its item
            out[-1] = f"{out[-1]} {part}"
        elif part:
            out.append(part)
    return out


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(1995, 2024)}"


def _size(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.randint(1, 60)} mm"
    return f"{rng.randint(1, 12)}.{rng.randint(0, 9)} cm"


def _measure(s: str, rng: random.Random) -> str | None:
    if _MEASURE.search(s):
        return _MEASURE.sub(lambda m: _size(rng), s, count=1)
    m = _FINDING.search(s)
    if not m:
        return None
    return s[: m.end()] + f" measuring {_size(rng)}" + s[m.end():]


def _side(s: str, rng: random.Random) -> str | None:
    if _SIDE.search(s):
        return _SIDE.sub(lambda m: {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}[m.group(1)], s, count=1)
    m = _ANATOMY.search(s)
    if not m:
        return None
    return s[: m.start()] + rng.choice(SIDES) + " " + s[m.start():]


def _modifier(s: str, rng: random.Random) -> str | None:
    if _SIZE.search(s) and rng.random() < 0.5:
        return _SIZE.sub(lambda m: rng.choice(SIZES), s, count=1)
    m = _FINDING.search(s)
    if not m:
        return None
    return s[: m.start()] + rng.choice(MODIFIERS) + " " + s[m.start():]


def _level(s: str, rng: random.Random) -> str | None:
    if _LEVEL.search(s):
        return _LEVEL.sub(lambda m: f"{rng.choice('TL')}{rng.randint(1, 12)}", s, count=1)
    return None


def _dated(s: str, rng: random.Random) -> str:
    head = rng.choice(DATE_FORMS).format(d=_date(rng))
    return head + (s[0].lower() + s[1:] if s[:2] != s[:2].upper() else s)


PERTURBATIONS = (_measure, _side, _modifier, _level)


def perturb(s: str, rng: random.Random) -> str:
    """One or two content changes (a date where none applies); always a different sentence."""
    out = s
    changes = 1 + (rng.random() < 0.35)
    for fn in rng.sample(PERTURBATIONS, len(PERTURBATIONS)):
        if changes == 0:
            break
        new = fn(out, rng)
        if new is not None and new != out:
            out, changes = new, changes - 1
    if out == s or (changes and rng.random() < 0.5):
        out = _dated(out, rng)
    return out


def join(a: str, b: str) -> str:
    a = a.rstrip(".!? ")
    return f"{a} and {b[0].lower() + b[1:] if b[:2] != b[:2].upper() else b}"


class Generator:
    def __init__(self, source: Path, seed: int, perturb_rate: float, join_rate: float) -> None:
        with source.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        self.shapes = []  # (findings sentences, impression sentences) of each OpenI report
        self.findings: list[str] = []  # every occurrence: drawing from it draws by frequency
        self.impressions: list[str] = []
        for row in rows:
            f, i = sentences(row.get("findings", "")), sentences(row.get("impression", ""))
            if f or i:
                self.shapes.append((len(f), len(i)))
                self.findings.extend(f)
                self.impressions.extend(i)
        self.rng = random.Random(seed)
        self.perturb_rate, self.join_rate = perturb_rate, join_rate

    def _section(self, n: int, pool: list[str]) -> list[str]:
        rng = self.rng
        out: list[str] = []
        draws = [rng.choice(pool) for _ in range(n)]
        i = 0
        while i < len(draws):
            s = draws[i]
            r = rng.random()
            if r < self.perturb_rate:
                s = perturb(s, rng)
            elif i + 1 < len(draws) and r < self.perturb_rate + self.join_rate:
                s = join(s, draws[i + 1])
                i += 1
            out.append(s)
            i += 1
        return out

    def report(self) -> tuple[list[str], list[str]]:
        nf, ni = self.rng.choice(self.shapes)
        return self._section(nf, self.findings), self._section(ni, self.impressions)


def generate(out: Path, n: int, seed: int = 0, perturb_rate: float = 0.40, join_rate: float = 0.28,
             source: Path = ROOT / "corpora/openi/reports.csv") -> dict:
    gen = Generator(source, seed, perturb_rate, join_rate)
    seen: set[int] = set()
    total = 0
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["report_id", "findings", "impression"])
        for i in range(1, n + 1):
            findings, impression = gen.report()
            for s in (*findings, *impression):
                seen.add(hash(s))
                total += 1
            writer.writerow([f"GEN{i:07d}", " ".join(findings), " ".join(impression)])
    return {"reports": n, "sentences": total, "distinct_sentences": len(seen), "distinct_fraction": len(seen) / max(total, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=4000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perturb", type=float, default=0.40, help="share of sentences perturbed")
    ap.add_argument("--join", type=float, default=0.28, help="share of the other sentences joined with the next one")
    ap.add_argument("--source", type=Path, default=ROOT / "corpora/openi/reports.csv")
    args = ap.parse_args(argv)
    if args.reports < 1:
        sys.exit("--reports must be at least 1")
    info = generate(args.out, args.reports, args.seed, args.perturb, args.join, args.source)
    print(f"{args.out}: {info['reports']} reports, {info['sentences']} sentences, {info['distinct_sentences']} distinct "
          f"(distinct-sentence fraction {info['distinct_fraction']:.3f})")


if __name__ == "__main__":
    main()
