"""Hand-built report records (the graphs.jsonl layout) for analysis tests that need no spaCy."""

from __future__ import annotations


def record(rid: str, nps=(), verbs=(), entities=(), labels=None) -> dict:
    ents = {str(i): {"tokens": t, "label": l, "start_ix": i, "end_ix": i, "relations": [], "section": "FINDINGS", "concepts": []}
            for i, (t, l) in enumerate(entities, start=1)}
    return {"id": rid, "text": " ".join(t for t, _l in entities), "sections": [], "entities": ents,
            "labels": labels or {}, "verbs": list(verbs), "noun_phrases": list(nps)}


ABSENT = "Observation::definitely absent"
PRESENT = "Observation::definitely present"
UNCERTAIN = "Observation::uncertain"
ANATOMY = "Anatomy::definitely present"
