from radtool.pipeline.entities import inflections


def ents(doc):
    return {(e.text, e.label_) for e in doc.ents}


def test_entities_in_radgraph_schema(nlp):
    doc = nlp("Small left pleural effusion.")
    assert ("pleural effusion", "Observation") in ents(doc)
    assert ("left", "Anatomy") in ents(doc)
    assert ("Small", "Observation") in ents(doc)


def test_exclusion_phrase_wins_over_mention(nlp):
    doc = nlp("Small pericardial effusion.")
    assert doc._.labels["Pleural Effusion"] is None


def test_plurals_match(nlp):
    doc = nlp("Bilateral pleural effusions.")
    assert doc._.labels["Pleural Effusion"] == 1
    assert "effusions" in inflections("effusion") and "opacities" in inflections("opacity")


def _relations(doc):
    ents = list(doc.ents)
    return {(rel, ents[h].text, ents[t].text) for rel, h, t in doc._.relations}


def test_located_at_and_modify(nlp):
    rels = _relations(nlp("There is a small effusion in the left lung."))
    assert ("located_at", "effusion", "left lung") in rels
    assert ("modify", "small", "effusion") in rels


def test_bare_modifier_is_located_at_anatomy(nlp):
    rels = _relations(nlp("The heart is enlarged."))
    assert ("located_at", "enlarged", "heart") in rels


def test_suggestive_of(nlp):
    rels = _relations(nlp("Right basilar opacity suggestive of pneumonia."))
    assert ("suggestive_of", "opacity", "pneumonia") in rels


def test_graph_is_networkx_digraph(nlp):
    import networkx as nx

    doc = nlp("There is a small effusion in the left lung.")
    graph = doc._.graph
    assert isinstance(graph, nx.DiGraph)
    labels = {d["tokens"]: d["label"] for _n, d in graph.nodes(data=True)}
    assert labels["effusion"] == "Observation::definitely present"
    assert any(d["relation"] == "located_at" for _a, _b, d in graph.edges(data=True))


def test_radgraph_layout(nlp):
    record = nlp("No pneumothorax.")._.radgraph
    tokens = record["text"].split(" ")
    (ent,) = [e for e in record["entities"].values() if e["tokens"] == "pneumothorax"]
    assert ent["label"] == "Observation::definitely absent"
    assert tokens[ent["start_ix"] : ent["end_ix"] + 1] == ["pneumothorax"]


def test_relations_rarely_cross_a_comma(nlp):
    rels = _relations(nlp("Heart size mildly enlarged, aortic calcifications."))
    assert ("modify", "enlarged", "calcifications") not in rels
    assert ("located_at", "enlarged", "Heart size") in rels


def test_verbs_are_prose_verbs_not_lexicon_terms(nlp):
    record = nlp("Left lower lobe opacity. A calcified granuloma is seen.")._.radgraph
    assert record["verbs"] == ["see"]
