"""Corpus counts: verbs, entities, noun phrases, and label prevalence per observation; bar charts of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io.labels import parse_value
from ..labeling import ENTITY_LABELS
from .features import family_items, split_entity_key

PREVALENCE_KEYS = ("present", "absent", "uncertain", "not_mentioned")
_VALUE_KEY = {1: "present", 0: "absent", -1: "uncertain", None: "not_mentioned"}


@dataclass
class CorpusStats:
    reports: int
    verbs: list[dict]  # verb, count, reports, share_of_reports
    entities: list[dict]  # entity, type, certainty, count, reports
    noun_phrases: list[dict]  # noun_phrase, count, reports, share_of_reports
    prevalence: list[dict]  # observation, present, absent, uncertain, not_mentioned


class StatsCounter:
    """Counts of a corpus, one report record at a time (memory: the distinct features, not the reports)."""

    FAMILIES = ("verbs", "noun_phrases", "entities")

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        self.columns = list(columns) if columns is not None else None
        self.reports = 0
        self.mentions = {f: Counter() for f in self.FAMILIES}
        self.in_reports = {f: Counter() for f in self.FAMILIES}
        self.values: dict[str, Counter] = {}

    def add(self, record: dict) -> None:
        if self.columns is None:
            self.columns = list(record.get("labels", {}))
        self.reports += 1
        for family in self.FAMILIES:
            items = family_items(record, family)
            self.mentions[family].update(items)
            self.in_reports[family].update(set(items))
        labels = record.get("labels", {})
        for col in self.columns:
            self.values.setdefault(col, Counter())[_VALUE_KEY.get(parse_value(labels.get(col)), "not_mentioned")] += 1

    def update(self, records: Iterable[dict]) -> StatsCounter:
        for record in records:
            self.add(record)
        return self

    def prevalence(self) -> list[dict]:
        return [{"observation": col, **{k: self.values.get(col, Counter()).get(k, 0) for k in PREVALENCE_KEYS}} for col in self.columns or []]

    def result(self) -> CorpusStats:
        n = self.reports
        share = (lambda k: round(k / n, 4)) if n else (lambda k: 0.0)
        ranked = {f: _ranked(self.mentions[f], self.in_reports[f]) for f in self.FAMILIES}
        verbs = [{"verb": v, "count": c, "reports": r, "share_of_reports": share(r)} for v, c, r in ranked["verbs"]]
        nps = [{"noun_phrase": v, "count": c, "reports": r, "share_of_reports": share(r)} for v, c, r in ranked["noun_phrases"]]
        entities = []
        for key, c, r in ranked["entities"]:
            text, kind, certainty = split_entity_key(key)
            entities.append({"entity": text, "type": kind, "certainty": certainty, "count": c, "reports": r, "share_of_reports": share(r)})
        return CorpusStats(n, verbs, entities, nps, self.prevalence())


def _ranked(mentions: Counter, reports: Counter) -> list[tuple[str, int, int]]:
    return sorted(((k, mentions[k], reports[k]) for k in mentions), key=lambda t: (-t[1], -t[2], t[0]))


def prevalence(records: Iterable[dict], columns: Sequence[str]) -> list[dict]:
    """Per observation, how many reports have it present (1), absent (0), uncertain (-1), not mentioned (blank)."""
    counter = StatsCounter(columns)
    for record in records:
        counter.reports += 1
        labels = record.get("labels", {})
        for col in counter.columns:
            counter.values.setdefault(col, Counter())[_VALUE_KEY.get(parse_value(labels.get(col)), "not_mentioned")] += 1
    return counter.prevalence()


def corpus_stats(records: Iterable[dict], columns: Sequence[str] | None = None) -> CorpusStats:
    """Counts over ``records`` (any iterable: a list, or a stream read from graphs.jsonl)."""
    return StatsCounter(columns).update(records).result()


# ---------------------------------------------------------------- charts

# One colour per RadGraph entity label, in RadGraph's own (long) vocabulary: radtool.labeling.ENTITY_LABELS.
LABEL_COLORS = dict(zip(ENTITY_LABELS, ("#1f77b4", "#d62728", "#ff7f0e", "#2ca02c")))
PREVALENCE_COLORS = {"present": "#d62728", "absent": "#2ca02c", "uncertain": "#ff7f0e", "not_mentioned": "#c7c7c7"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from ..io import atomic_write

    with atomic_write(path, mode="wb") as fh:
        fig.savefig(fh, format="png", dpi=120, bbox_inches="tight")


def _barh(labels: list[str], values: list[float], title: str, xlabel: str, path: Path, colors=None, legend=None) -> None:
    plt = _pyplot()
    height = max(2.5, 0.32 * len(labels) + 1.2)
    fig, ax = plt.subplots(figsize=(8, height))
    y = list(range(len(labels)))
    ax.barh(y, values, color=colors or "#4c72b0")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:.0%}" if xlabel.startswith("share") else f" {v:,}", va="center", fontsize=8)
    ax.set_xlim(0, max(values, default=1) * 1.15 or 1)
    if xlabel.startswith("share"):
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _p: f"{v:.0%}"))
    if legend:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=c, label=l) for l, c in legend.items()], loc="lower right", fontsize=8)
    _save(fig, path)
    plt.close(fig)


def plot_verbs(stats: CorpusStats, path: Path, top: int = 20) -> None:
    rows = sorted(stats.verbs, key=lambda r: (-r["reports"], r["verb"]))[:top]  # ranked by what the bars show
    _barh([r["verb"] for r in rows], [r["share_of_reports"] for r in rows],
          f"Top {len(rows)} verbs ({stats.reports:,} reports)", "share of reports using the verb", path)


def plot_entities(stats: CorpusStats, path: Path, top: int = 20) -> None:
    rows = stats.entities[:top]
    labels = [f"{r['type']}::{r['certainty']}" for r in rows]
    used = {l: LABEL_COLORS.get(l, "#7f7f7f") for l in dict.fromkeys(labels)}
    _barh([f"{r['entity']} ({l})" for r, l in zip(rows, labels)], [r["count"] for r in rows],
          f"Top {len(rows)} entities ({stats.reports:,} reports)", "mentions", path,
          colors=[used[l] for l in labels], legend=used)


def plot_prevalence(stats: CorpusStats, path: Path) -> None:
    plt = _pyplot()
    rows = stats.prevalence
    n = max(stats.reports, 1)
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.36 * len(rows) + 1.5)))
    y = list(range(len(rows)))
    left = [0.0] * len(rows)
    for key in PREVALENCE_KEYS:
        vals = [r[key] / n for r in rows]
        ax.barh(y, vals, left=left, color=PREVALENCE_COLORS[key], label=key.replace("_", " "))
        for yi, (l, v) in enumerate(zip(left, vals)):
            if v >= 0.06:
                ax.text(l + v / 2, yi, f"{v:.0%}", va="center", ha="center", fontsize=7, color="black")
        left = [l + v for l, v in zip(left, vals)]
    ax.set_yticks(y, [r["observation"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _p: f"{v:.0%}"))
    ax.set_xlabel("share of reports")
    ax.set_title(f"Label prevalence ({stats.reports:,} reports)")
    ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12 if len(rows) > 3 else -0.25), fontsize=8, frameon=False)
    _save(fig, path)
    plt.close(fig)
