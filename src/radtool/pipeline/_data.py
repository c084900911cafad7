"""What radtool's components save with ``nlp.to_disk``: their rules and schema, as JSON.

A saved pipeline then carries everything it was built with (a user schema given as a path, the rule
files of the radtool version that built it) and loads on a machine where that path does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import srsly

from ..schemas import Schema, schema_from_dict

DATA_FILE = "radtool_data.json"


def write_data(path: str | Path, data: dict[str, Any]) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    srsly.write_json(path / DATA_FILE, data)


def read_data(path: str | Path) -> dict[str, Any]:
    """The saved data, or ``{}`` for a component saved without any (spaCy calls from_disk regardless)."""
    file = Path(path) / DATA_FILE
    return dict(srsly.read_json(file)) if file.is_file() else {}


def data_to_bytes(data: dict[str, Any]) -> bytes:
    return srsly.msgpack_dumps(data)


def data_from_bytes(data: bytes) -> dict[str, Any]:
    return dict(srsly.msgpack_loads(data))


class SavesData:
    """spaCy's serialization methods for a component that says what it saves: ``_data()`` returns a
    JSON-able dict, ``_set_data(data)`` restores it (and returns the component)."""

    def _data(self) -> dict[str, Any]:  # pragma: no cover - every component overrides it
        raise NotImplementedError

    def _set_data(self, data: dict[str, Any]):  # pragma: no cover
        raise NotImplementedError

    def to_disk(self, path, *, exclude=()) -> None:
        write_data(path, self._data())

    def from_disk(self, path, *, exclude=()):
        return self._set_data(read_data(path))

    def to_bytes(self, *, exclude=()) -> bytes:
        return data_to_bytes(self._data())

    def from_bytes(self, data: bytes, *, exclude=()):
        return self._set_data(data_from_bytes(data))


def schema_to_dict(schema: Schema) -> dict[str, Any]:
    """A schema as the JSON that :func:`radtool.schemas.schema_from_dict` reads back to an equal Schema."""
    observations = {}
    for obs in schema.observations:
        spec: dict[str, Any] = {"mentions": list(obs.mentions)}
        if obs.exclusions:
            spec["exclusions"] = list(obs.exclusions)
        if obs.combinations:
            spec["combinations"] = [{"finding": sorted(f), "anatomy": sorted(a)} for f, a in obs.combinations]
        if obs.explained_by:
            spec["explained_by"] = list(obs.explained_by)
        observations[obs.name] = spec
    return {
        "name": schema.name,
        "version": schema.version,
        "no_finding": schema.no_finding,
        "ignore_for_no_finding": sorted(schema.ignore_for_no_finding),
        "observations": observations,
    }


def schema_from_data(data: dict[str, Any]) -> Schema:
    return schema_from_dict(data, source=f"saved schema {data.get('name', '')}".strip())
