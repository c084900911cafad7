from radtool.pipeline.sections import UNSECTIONED, segment, split_sections


def test_sections_from_titles():
    text = "INDICATION: evaluate for pneumonia.\nFINDINGS: Lungs are clear. IMPRESSION: Normal chest."
    names = [s.name for s in split_sections(text)]
    assert names == ["INDICATION", "FINDINGS", "IMPRESSION"]


def test_text_without_titles_is_unsectioned():
    assert [s.name for s in split_sections("Lungs are clear.")] == [UNSECTIONED]


def test_sentences_split_numbered_items_and_missing_spaces():
    text = "1. Bullous emphysema. 2. Scarring in the left apex.There is no effusion."
    sentences = [text[s:e] for _n, s, e in segment(text)]
    assert sentences == ["1. Bullous emphysema.", "2. Scarring in the left apex.", "There is no effusion."]


def test_decimal_and_abbreviation_do_not_split():
    text = "Nodule measures 1.2 cm, stable vs. prior. Heart normal."
    sentences = [text[s:e] for _n, s, e in segment(text)]
    assert sentences == ["Nodule measures 1.2 cm, stable vs. prior.", "Heart normal."]


def test_component_sets_sections_and_sentences(nlp):
    doc = nlp("INDICATION: evaluate for pneumonia. FINDINGS: No effusion. The heart is normal.")
    assert [s["name"] for s in doc._.radtool_sections] == ["INDICATION", "FINDINGS"]
    assert [(s.label_, s.text) for s in doc.spans["radtool_sentences"]][-2:] == [("FINDINGS", "No effusion."), ("FINDINGS", "The heart is normal.")]
    sents = [s.text for s in doc.sents]
    assert "No effusion." in sents and "The heart is normal." in sents


def test_indication_does_not_feed_labels(nlp):
    doc = nlp("INDICATION: evaluate for pneumonia. FINDINGS: Lungs are clear.")
    assert doc._.labels["Pneumonia"] is None
    assert doc._.labels["No Finding"] == 1


def test_label_sections_are_configurable():
    import radtool

    nlp = radtool.load(schema="chexpert", label_sections=["INDICATION", "FINDINGS"])
    doc = nlp("INDICATION: pneumonia. FINDINGS: Lungs are clear.")
    assert doc._.labels["Pneumonia"] == 1
