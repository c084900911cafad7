"""Pictures of one report: an HTML page with entity spans and relation arcs (displaCy), and a PNG of its graph.

Entity labels are RadGraph's, as in graphs.jsonl (``Observation::definitely absent``); with
``short_labels`` the pictures use RadGraph's short form (``OBS-DA``) and the legend gives both.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..labeling import ENTITY_LABELS, short_label
from .stats import LABEL_COLORS, _pyplot, _save


def _tag(label: str, short_labels: bool = False) -> str:
    return short_label(label) if short_labels else label


def _colors(short_labels: bool) -> dict[str, str]:
    return {_tag(label, short_labels): color for label, color in LABEL_COLORS.items()}


def _segments(record: dict) -> list[tuple[int, int]]:
    """Token ranges to draw one arc diagram each: sentences (cut after "."), merged where a relation crosses."""
    tokens = record["text"].split(" ") if record["text"] else []
    cuts, start = [], 0
    for i, tok in enumerate(tokens):
        if tok == "." or i == len(tokens) - 1:
            cuts.append([start, i])
            start = i + 1
    ents = record["entities"]
    for ent in ents.values():
        for _rel, target in ent["relations"]:
            lo = min(ent["start_ix"], ents[target]["start_ix"])
            hi = max(ent["end_ix"], ents[target]["end_ix"])
            first = next(j for j, (a, b) in enumerate(cuts) if a <= lo <= b)
            last = next(j for j, (a, b) in enumerate(cuts) if a <= hi <= b)
            if first != last:
                cuts[first : last + 1] = [[cuts[first][0], cuts[last][1]]]
    return [tuple(c) for c in cuts]


def arc_diagrams(record: dict, short_labels: bool = False) -> list[dict]:
    """displaCy ``dep`` (manual) data per sentence: an entity is one word tagged with its label; arcs are relations."""
    tokens = record["text"].split(" ") if record["text"] else []
    ents = record["entities"]
    by_start = {e["start_ix"]: (key, e) for key, e in ents.items()}
    diagrams = []
    for a, b in _segments(record):
        words, position = [], {}
        i = a
        while i <= b:
            if i in by_start and by_start[i][1]["end_ix"] <= b:
                key, ent = by_start[i]
                position[key] = len(words)
                words.append({"text": " ".join(tokens[ent["start_ix"] : ent["end_ix"] + 1]), "tag": _tag(ent["label"], short_labels)})
                i = ent["end_ix"] + 1
            else:
                words.append({"text": tokens[i], "tag": ""})
                i += 1
        arcs = []
        for key, ent in ents.items():
            for rel, target in ent["relations"]:
                if key in position and target in position and position[key] != position[target]:
                    h, t = position[key], position[target]
                    arcs.append({"start": min(h, t), "end": max(h, t), "label": rel, "dir": "right" if t > h else "left"})
        if arcs:
            diagrams.append({"words": words, "arcs": arcs})
    return diagrams


def render_html(record: dict, title: str | None = None, short_labels: bool = False) -> str:
    from spacy import displacy

    tokens = record["text"].split(" ") if record["text"] else []
    spans = [{"start_token": e["start_ix"], "end_token": e["end_ix"] + 1, "label": _tag(e["label"], short_labels)}
             for e in sorted(record["entities"].values(), key=lambda e: e["start_ix"])]
    colors = _colors(short_labels)
    span_html = displacy.render({"text": record["text"], "tokens": tokens, "spans": spans}, style="span", manual=True,
                                options={"colors": {k: v + "66" for k, v in colors.items()}}, page=False)
    arcs_html = "".join(
        displacy.render(d, style="dep", manual=True, page=False, options={"compact": True, "distance": 110, "word_spacing": 30})
        for d in arc_diagrams(record, short_labels)
    ) or "<p>No relations.</p>"
    labels = record.get("labels", {})
    label_rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{'' if v is None else v}</td></tr>" for c, v in labels.items() if v is not None)
    legend = " ".join(
        f'<span style="background:{LABEL_COLORS[label]}66;padding:2px 6px;margin-right:6px">{html.escape(label)} ({short_label(label)})</span>'
        for label in ENTITY_LABELS
    )
    title = html.escape(title or f"Report {record.get('id', '')}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}} table{{border-collapse:collapse}}
td{{border:1px solid #ddd;padding:2px 8px}} .arcs{{overflow-x:auto}}</style></head>
<body><h1>{title}</h1>
<p>{legend}<br><small>RadGraph entity labels (short form in brackets: OBS = observation, ANAT = anatomy; DP = definitely present, DA = definitely absent, U = uncertain).</small></p>
<h2>Entities</h2>{span_html}
<h2>Relations</h2><div class="arcs">{arcs_html}</div>
<h2>Labels</h2><table>{label_rows or '<tr><td>no observation mentioned</td></tr>'}</table>
</body></html>
"""


def _layout(graph) -> dict:
    """Connected entities by a spring layout above; entities without relations in rows below."""
    import networkx as nx

    linked = [v for v in graph if graph.degree(v) > 0]
    alone = [v for v in graph if graph.degree(v) == 0]
    pos = {}
    components = sorted(nx.connected_components(graph.subgraph(linked).to_undirected()), key=lambda c: (-len(c), min(c, key=int)))
    per_line = 3
    for i, comp in enumerate(components):
        row, col = divmod(i, per_line)
        sub = graph.subgraph(comp).to_undirected()
        local = nx.kamada_kawai_layout(sub, scale=0.5 * len(comp) ** 0.5) if len(comp) > 2 else {v: (j * 1.3 - 0.65, 0.0) for j, v in enumerate(sorted(comp, key=int))}
        for v, (x, y) in local.items():
            pos[v] = (x + 2.6 * col, y - 1.2 * row)
    if pos:
        xs = [p[0] for p in pos.values()]
        mid = (min(xs) + max(xs)) / 2
        pos = {v: (x - mid, y) for v, (x, y) in pos.items()}
    per_row = 5
    top = min((p[1] for p in pos.values()), default=0.0) - (0.9 if pos else 0.0)
    for i, v in enumerate(alone):
        row, col = divmod(i, per_row)
        width = min(per_row, len(alone) - row * per_row)
        pos[v] = ((col - (width - 1) / 2) * 1.3, top - 0.6 * row)
    return pos


def plot_graph(record: dict, path: Path, short_labels: bool = False) -> None:
    import networkx as nx

    from ..pipeline.graph import to_networkx

    plt = _pyplot()
    graph = to_networkx(record)
    n = graph.number_of_nodes()
    pos = _layout(graph) if n else {}
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    width = min(18.0, max(6.0, 1.6 * (max(xs) - min(xs) + 1.6)))
    height = min(14.0, max(3.5, 1.6 * (max(ys) - min(ys) + 1.4)))
    fig, ax = plt.subplots(figsize=(width, height))
    if n:
        palette = _colors(short_labels)
        labels = [_tag(graph.nodes[v]["label"], short_labels) for v in graph]
        colors = [palette.get(l, "#7f7f7f") for l in labels]
        nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colors, node_size=700, alpha=0.35)
        texts = nx.draw_networkx_labels(graph, pos, ax=ax, labels={v: graph.nodes[v]["tokens"] for v in graph}, font_size=9)
        for t in texts.values():
            t.set_clip_on(False)
        nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowstyle="-|>", arrowsize=14, node_size=700, edge_color="#555")
        nx.draw_networkx_edge_labels(graph, pos, ax=ax, edge_labels=nx.get_edge_attributes(graph, "relation"),
                                     font_size=8, font_color="#333")
        from matplotlib.patches import Patch

        used = dict.fromkeys(labels)
        ax.legend(handles=[Patch(color=palette.get(l, "#7f7f7f"), alpha=0.5, label=l) for l in used], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
        ax.set_ylim(min(ys) - 0.4, max(ys) + 0.4)
    else:
        ax.text(0.5, 0.5, "no entities", ha="center", va="center")
    ax.set_title(f"Report {record.get('id', '')}: {n} entities, {graph.number_of_edges()} relations")
    ax.axis("off")
    _save(fig, path)
    plt.close(fig)
