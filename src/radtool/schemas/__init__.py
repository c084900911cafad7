"""Label schemas: which observations a labels.csv has, and the phrases that mention each.

A schema is a JSON file (see docs/schemas.md)::

    {"name": "chexpert", "version": 1, "no_finding": "No Finding",
     "ignore_for_no_finding": ["Support Devices"],
     "observations": {"Pleural Effusion": {"mentions": [...], "exclusions": [...],
                                            "combinations": [{"finding": [...], "anatomy": [...]}]}}}

Shipped schemas are package data (``chexpert``, ``chestxray14``); any path to such a file works too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from ..errors import UserError

BUILTIN = {"chexpert": "chexpert.v1.json", "chestxray14": "chestxray14.v1.json"}


@dataclass(frozen=True)
class Observation:
    name: str
    mentions: tuple[str, ...]
    exclusions: tuple[str, ...] = ()
    combinations: tuple[tuple[frozenset[str], frozenset[str]], ...] = ()
    explained_by: tuple[str, ...] = ()  # a mention "consistent with" one of these does not count


@dataclass(frozen=True)
class Schema:
    name: str
    version: int
    observations: tuple[Observation, ...]
    no_finding: str | None = "No Finding"
    ignore_for_no_finding: frozenset[str] = field(default_factory=frozenset)

    @property
    def columns(self) -> list[str]:
        """Columns of labels.csv after the id: No Finding first (CheXpert layout) for chexpert, last otherwise."""
        names = [o.name for o in self.observations]
        if not self.no_finding:
            return names
        return [self.no_finding, *names] if self.name == "chexpert" else [*names, self.no_finding]

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version}


def _strings(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise UserError(f"schema {where}: expected a list of non-empty strings")
    return tuple(v.strip().lower() for v in value)


def schema_from_dict(data: dict, source: str = "schema") -> Schema:
    if not isinstance(data, dict) or not isinstance(data.get("observations"), dict) or not data["observations"]:
        raise UserError(f"{source}: a schema needs a non-empty 'observations' object")
    observations = []
    for name, spec in data["observations"].items():
        if not isinstance(spec, dict):
            raise UserError(f"{source}: observation {name!r} must be an object")
        mentions = _strings(spec.get("mentions"), f"{source} {name}.mentions")
        combos = []
        for i, combo in enumerate(spec.get("combinations") or []):
            if not isinstance(combo, dict):
                raise UserError(f"{source}: {name}.combinations[{i}] must be an object")
            combos.append(
                (
                    frozenset(_strings(combo.get("finding"), f"{source} {name}.combinations[{i}].finding")),
                    frozenset(_strings(combo.get("anatomy"), f"{source} {name}.combinations[{i}].anatomy")),
                )
            )
        if not mentions and not combos:
            raise UserError(f"{source}: observation {name!r} has no mentions")
        observations.append(
            Observation(
                name=name,
                mentions=mentions,
                exclusions=_strings(spec.get("exclusions"), f"{source} {name}.exclusions"),
                combinations=tuple(combos),
                explained_by=_strings(spec.get("explained_by"), f"{source} {name}.explained_by"),
            )
        )
    ignore = frozenset(data.get("ignore_for_no_finding") or [])
    unknown = ignore - {o.name for o in observations}
    if unknown:
        raise UserError(f"{source}: ignore_for_no_finding names unknown observations: {sorted(unknown)}")
    return Schema(
        name=str(data.get("name") or source),
        version=int(data.get("version", 1)),
        observations=tuple(observations),
        no_finding=data.get("no_finding", "No Finding"),
        ignore_for_no_finding=ignore,
    )


def load_schema(name_or_path: "str | Path | Schema" = "chexpert") -> Schema:
    """A shipped schema by name, or a schema JSON file by path; a Schema is returned as it is.

    Cached: a shipped schema is read and validated once per process, a file once per content
    (path, size and modification time), so components and commands can ask for it freely.
    """
    if isinstance(name_or_path, Schema):
        return name_or_path
    key = str(name_or_path)
    if key in BUILTIN:
        return _load_builtin(key)
    path = Path(key)
    if not path.is_file():
        raise UserError(f"schema not found: {key} (use one of {', '.join(BUILTIN)} or a path to a schema JSON file)")
    stat = path.stat()
    return _load_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=None)
def _load_builtin(name: str) -> Schema:
    return _parse(files(__name__).joinpath(BUILTIN[name]).read_text(encoding="utf-8"), BUILTIN[name])


@lru_cache(maxsize=32)
def _load_file(path: str, size: int, mtime_ns: int) -> Schema:  # size/mtime: re-read when the file changes
    return _parse(Path(path).read_text(encoding="utf-8"), Path(path).name)


def _parse(text: str, source: str) -> Schema:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"schema {source} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    return schema_from_dict(data, source)
