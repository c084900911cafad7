"""Report text + image: the joint representation X = [X_text, X_image] under one classifier.

A fusion run (``radtool classify train --text PARSE_DIR``) wraps the plugin's image model:

* X_image: the backbone's pooled pre-logits features, ``forward_head(forward_features(x), pre_logits=True)``
  (timm's way, so ConvNeXt's head norm and VGG's ``pre_logits`` are kept); the backbone's own
  classifier is removed (``reset_classifier(0)``), so DDP sees no unused parameters;
* X_text: the report's hashed feature vector (:mod:`radtool_vision.text`), projected by a small MLP
  (Linear, GELU) to ``hidden`` values;
* ``concat``: one linear layer over [X_text, X_image]; ``gated``: the text also scales the image
  features (``x_img * 2 sigmoid(W t)``, a FiLM-like gate starting at 1) before the same linear layer.

Missing text is normal (an image without a request): the whole text vector is zeroed for a fraction
``dropout`` of training images, drawn from (seed, epoch, image) like the augmentation, so DDP ranks
and resumed runs draw the same; ``forward(x)`` without text uses the zero vector.

What config.json and the checkpoint record about the text lives in one dict, :meth:`TextFusionSpec.to_dict`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .errors import UserError, missing_column, missing_file
from .text import TextEncoder, TextEncoderConfig, TextRows, check_sections, encode_parse_dir, parse_sections_option

FUSIONS = ("concat", "gated")
DEFAULT_HIDDEN = 256
DEFAULT_TEXT_DROPOUT = 0.25


@dataclass(frozen=True)
class TextFusionSpec:
    """The text side of a fusion run: encoder, projection width, fusion kind, dropout, join column."""

    encoder: TextEncoderConfig
    hidden: int = DEFAULT_HIDDEN
    fusion: str = "concat"
    dropout: float = DEFAULT_TEXT_DROPOUT
    id_column: str | None = None
    parse_dir: str | None = None  # where training read the text (informational; predict takes its own)

    def to_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_dict(), "hidden": self.hidden, "fusion": self.fusion,
                "dropout": self.dropout, "id_column": self.id_column, "parse_dir": self.parse_dir}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TextFusionSpec":
        return cls(TextEncoderConfig.from_dict(data["encoder"]), int(data["hidden"]), str(data["fusion"]),
                   float(data["dropout"]), data.get("id_column"), data.get("parse_dir"))


def make_spec(parse_dir: str | Path, sections: str | list[str] | None = None, allow_label_sections: bool = False,
              dim: int | None = None, hidden: int = DEFAULT_HIDDEN, fusion: str = "concat",
              dropout: float = DEFAULT_TEXT_DROPOUT, id_column: str | None = None) -> tuple[TextFusionSpec, str | None]:
    """Check the text options; returns the spec and the label-section warning (None when safe)."""
    from .text import GRAPHS_FILE

    graphs = Path(parse_dir) / GRAPHS_FILE if Path(parse_dir).is_dir() else Path(parse_dir)
    if not graphs.is_file():
        raise missing_file(graphs, f"--text parse output ({GRAPHS_FILE} written by `radtool parse`)")
    chosen = parse_sections_option(sections)
    warning = check_sections(chosen, allow_label_sections, parse_dir)
    if fusion not in FUSIONS:
        raise UserError(f"--text-fusion must be one of {', '.join(FUSIONS)}, not {fusion!r}")
    if not 0.0 <= dropout < 1.0:
        raise UserError(f"--text-dropout must be in [0, 1), not {dropout}")
    if hidden < 1:
        raise UserError(f"--text-hidden must be at least 1, not {hidden}")
    from .text import DEFAULT_DIM, leaky_sections

    encoder = TextEncoderConfig(sections=chosen, dim=dim or DEFAULT_DIM,
                                label_sections_used=tuple(leaky_sections(chosen, parse_dir)))
    return TextFusionSpec(encoder, hidden, fusion, dropout, id_column, str(parse_dir)), warning


# -- joining text to images ---------------------------------------------------------------


def first_column(path: str | Path) -> str | None:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), None)
    return header[0].strip() if header else None


def join_column(data: str | Path, image_index: str | Path | None, id_column: str | None) -> str:
    """The report-id column the text is joined on: --id-column, else the labels' first column with --image-index."""
    if id_column:
        return id_column
    if image_index is not None:
        found = first_column(data)
        if found:
            return found
    raise UserError("--text joins reports to images by report id: pass --id-column naming the report-id column "
                    "of --data (or join a radtool labels.csv with --image-index, whose first column is the id)")


def table_text(table: Any, id_column: str, parse_dir: str | Path, spec: TextFusionSpec) -> TextRows:
    """Text vectors for every row of an ImageTable (zeros where the report has no parsed text)."""
    if id_column not in table.columns:
        raise missing_column(id_column, list(table.columns), table.source)
    return encode_parse_dir(parse_dir, TextEncoder(spec.encoder), table.columns[id_column])


class TextBatches:
    """Text vectors for batches of a split's positions, with training dropout drawn from (seed, epoch, image)."""

    def __init__(self, rows: TextRows, dropout: float = 0.0, seed: int = 0):
        self.rows, self.dropout, self.seed = rows, dropout, seed
        self._epoch, self._drop = None, None

    def __call__(self, positions: np.ndarray, epoch: int | None = None) -> torch.Tensor:
        drop = None
        if epoch is not None and self.dropout > 0:
            if self._epoch != epoch:
                rng = np.random.default_rng((self.seed, 271828, epoch))
                self._epoch, self._drop = epoch, rng.random(len(self.rows)) < self.dropout
            drop = self._drop[positions]
        return torch.from_numpy(self.rows.dense(positions, drop))


# -- the model ------------------------------------------------------------------------------


def image_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled pre-logits features (B, D), as timm defines them."""
    f = model.forward_head(model.forward_features(x), pre_logits=True)
    return f if f.dim() == 2 else f.flatten(1)


def _strip_classifier(model: nn.Module) -> int:
    """Remove the image model's classifier; return its pre-logits width."""
    if not hasattr(model, "forward_head") or not hasattr(model, "forward_features"):
        raise UserError(f"--text needs a timm architecture (forward_features / forward_head); "
                        f"{type(model).__name__} has none (tv: models are not supported)")
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(0)
    elif isinstance(getattr(model, "head", None), nn.Linear):  # the 3-CNN fusion family
        model.head = nn.Identity()
    return int(getattr(model, "head_hidden_size", None) or model.num_features)


class TextFusionModel(nn.Module):
    """[text MLP(t), image features(x)] -> linear; ``forward(x)`` alone uses an empty (zero) text."""

    def __init__(self, image_model: nn.Module, text_dim: int, num_classes: int, hidden: int = DEFAULT_HIDDEN,
                 fusion: str = "concat"):
        super().__init__()
        self.image_dim = _strip_classifier(image_model)
        self.image_model = image_model
        self.text_dim, self.fusion = int(text_dim), fusion
        self.text_proj = nn.Sequential(nn.Linear(self.text_dim, hidden), nn.GELU())
        self.gate = nn.Linear(hidden, self.image_dim) if fusion == "gated" else None
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        self.head = nn.Linear(self.image_dim + hidden, num_classes)
        self.pretrained_cfg = dict(getattr(image_model, "pretrained_cfg", {}) or {})

    def forward_fused(self, feats: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        if text is None:
            text = feats.new_zeros((feats.shape[0], self.text_dim))
        t = self.text_proj(text.to(device=feats.device))
        if self.gate is not None:
            feats = feats * (2.0 * torch.sigmoid(self.gate(t)))
        return self.head(torch.cat([feats, t.to(feats.dtype)], dim=1))

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_fused(image_features(self.image_model, x), text)

    def get_classifier(self) -> nn.Module:
        """What --freeze-backbone trains: the text projection, the gate and the head."""
        return nn.ModuleList([m for m in (self.text_proj, self.gate, self.head) if m is not None])


def build_model(image_model: nn.Module, spec: TextFusionSpec, num_classes: int) -> TextFusionModel:
    return TextFusionModel(image_model, spec.encoder.dim, num_classes, spec.hidden, spec.fusion)


def is_text_model(model: nn.Module) -> bool:
    from .checkpoint import unwrap_model

    return isinstance(unwrap_model(model), TextFusionModel)


def call(model: nn.Module, x: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
    """``model(x)`` for image models, ``model(x, text)`` for fusion runs (DDP/compile wrappers pass it on)."""
    return model(x) if text is None else model(x, text.to(x.device, non_blocking=True))


class FixedText(nn.Module):
    """The fusion model with one report's text held fixed: an image-only model for Grad-CAM."""

    def __init__(self, model: TextFusionModel, text: torch.Tensor | None):
        super().__init__()
        self.model = model
        self.text = text

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        text = None if self.text is None else self.text.to(x.device).expand(x.shape[0], -1)
        return self.model(x, text)


# -- which text features moved a prediction --------------------------------------------------


@torch.no_grad()
def text_contributions(model: TextFusionModel, x: torch.Tensor, spec: TextFusionSpec, record: dict[str, Any] | None,
                       classes: list[str], top: int = 8) -> list[dict[str, Any]]:
    """For each class, the report features whose removal changes the probability most (occlusion).

    Each named feature is taken out of the report and the vector rebuilt (so its normalisation is
    redone); ``delta`` = p(with the report) - p(without that feature). A row ``(no text)`` gives
    p with an empty text vector, for scale.
    """
    encoder = TextEncoder(spec.encoder)
    feats = encoder.features(record) if record else {}
    names = sorted(feats)
    vectors = [encoder.encode(record) if record else np.zeros(spec.encoder.dim, np.float32),
               np.zeros(spec.encoder.dim, np.float32)]
    for name in names:
        rest = dict(feats)
        del rest[name]
        idx, val = encoder.vectorize(rest)
        v = np.zeros(spec.encoder.dim, np.float32)
        v[idx] = val
        vectors.append(v)
    model.eval()
    f = image_features(model.image_model, x).float()
    texts = torch.from_numpy(np.stack(vectors)).to(x.device)
    probs = torch.sigmoid(model.forward_fused(f.expand(len(vectors), -1), texts).float()).cpu().numpy()
    rows = []
    for j, cls in enumerate(classes):
        full, empty = float(probs[0, j]), float(probs[1, j])
        rows.append({"class": cls, "feature": "(no text)", "p_with_text": full, "p_without": empty,
                     "delta": full - empty})
        deltas = [(full - float(probs[2 + k, j]), name) for k, name in enumerate(names)]
        for delta, name in sorted(deltas, key=lambda d: -abs(d[0]))[:top]:
            rows.append({"class": cls, "feature": name, "p_with_text": full, "p_without": full - delta, "delta": delta})
    return rows


def run_text(meta: dict[str, Any], parse_dir: str | Path, id_column: str | None, columns: dict[str, list[str]],
             source: object) -> TextRows:
    """Text vectors for inference rows (``columns``: column name -> values) of a fusion run."""
    if not meta.get("text"):
        raise UserError("--text: this run was trained on images alone; train with --text PARSE_DIR for a fusion run")
    spec = TextFusionSpec.from_dict(meta["text"])
    column = id_column or spec.id_column
    if column not in columns:
        raise missing_column(column, list(columns), source)
    return encode_parse_dir(parse_dir, TextEncoder(spec.encoder), columns[column])


def explain_records(meta: dict[str, Any], parse_dir: str | Path | None, report_ids: list[str] | None,
                    images: list[Path]) -> tuple[TextFusionSpec | None, list[tuple[dict | None, torch.Tensor | None]]]:
    """Per image: its report record and text vector (1, dim), or (None, None) for images alone."""
    if parse_dir is None:
        if report_ids:
            raise UserError("--report-id needs --text PARSE_DIR")
        spec = TextFusionSpec.from_dict(meta["text"]) if meta.get("text") else None
        return spec, [(None, None)] * len(images)
    if not meta.get("text"):
        raise UserError("--text: this run was trained on images alone; train with --text PARSE_DIR for a fusion run")
    spec = TextFusionSpec.from_dict(meta["text"])
    ids = list(report_ids or [Path(p).stem for p in images])
    if len(ids) == 1 and len(images) > 1:
        ids = ids * len(images)
    if len(ids) != len(images):
        raise UserError(f"--report-id given {len(ids)} times for {len(images)} images; give one per image (or one for all)")
    from .text import iter_records

    wanted = set(ids)
    found = {str(r["id"]): r for r in iter_records(parse_dir) if str(r["id"]) in wanted}
    encoder = TextEncoder(spec.encoder)
    out = []
    for rid in ids:
        record = found.get(rid)
        out.append((record, None if record is None else torch.from_numpy(encoder.encode(record))[None]))
    return spec, out


def write_text_features(path: Path, rows: list[dict[str, Any]]) -> None:
    from .io import write_csv

    columns = ("image", "class", "feature", "p_with_text", "p_without", "delta")
    write_csv(path, columns, ([r[c] if not isinstance(r[c], float) else round(r[c], 5) for c in columns] for r in rows))
