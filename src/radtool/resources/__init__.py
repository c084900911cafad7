"""Data files shipped with radtool: lexicon, ConText rules, section titles.

Everything here is read with :mod:`importlib.resources`, validated on load and cached.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

from ..errors import UserError


def read_json(package: str, name: str) -> dict[str, Any]:
    try:
        text = files(package).joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError as exc:  # pragma: no cover - packaging error
        raise UserError(f"resource {name!r} is missing from {package}") from exc
    return json.loads(text)


@lru_cache(maxsize=None)
def lexicon() -> dict[str, Any]:
    data = read_json(__name__, "lexicon.v1.json")
    for key in ("anatomy", "anatomy_modifiers", "finding_modifiers", "normal_findings", "devices", "findings", "suggestive_cues"):
        if not isinstance(data.get(key), list) or not all(isinstance(t, str) for t in data[key]):
            raise UserError(f"lexicon.v1.json: {key!r} must be a list of strings")
    return data


@lru_cache(maxsize=None)
def context_rules() -> list[dict[str, Any]]:
    data = read_json(__name__, "context_rules.v1.json")
    rules = data.get("context_rules")
    if not isinstance(rules, list):
        raise UserError("context_rules.v1.json: 'context_rules' must be a list")
    for rule in rules:
        if not {"literal", "category"} <= set(rule):
            raise UserError(f"context_rules.v1.json: rule without literal/category: {rule}")
    return rules


@lru_cache(maxsize=None)
def section_rules() -> dict[str, Any]:
    data = read_json(__name__, "sections.v1.json")
    if not isinstance(data.get("sections"), dict):
        raise UserError("sections.v1.json: 'sections' must map names to title lists")
    return data
