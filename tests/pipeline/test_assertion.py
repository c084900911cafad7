"""One example sentence per label rule (docs/label-policy.md lists the same)."""

import pytest

CASES = [
    # negation
    ("There is no evidence of pneumothorax.", "Pneumothorax", 0),
    ("No pleural effusion.", "Pleural Effusion", 0),
    ("Lungs are clear without focal consolidation.", "Consolidation", 0),
    ("The lungs are free of consolidation.", "Consolidation", 0),
    ("Negative for pneumothorax.", "Pneumothorax", 0),
    ("No pneumothorax or large pleural effusion.", "Pleural Effusion", 0),
    ("The heart is not enlarged.", "Cardiomegaly", 0),
    ("There is no focal air space opacity to suggest a pneumonia.", "Pneumonia", 0),
    ("No focal consolidation, suspicious pulmonary opacity, pleural effusion, or pneumothorax.", "Pleural Effusion", 0),
    # resolution means absent
    ("Pneumonia has resolved.", "Pneumonia", 0),
    ("The effusion is no longer seen.", "Pleural Effusion", 0),
    ("Interval removal of the chest tube.", "Support Devices", 0),
    ("Resolution of the left lower lobe consolidation.", "Consolidation", 0),
    ("Skin fold mimicking a pneumothorax over the right apex.", "Pneumothorax", 0),
    # pre-negation uncertainty: uncertain, not negated
    ("Small left pleural effusion cannot be excluded.", "Pleural Effusion", -1),
    ("Pneumothorax is not excluded.", "Pneumothorax", -1),
    ("Cannot rule out pneumonia.", "Pneumonia", -1),
    ("Difficult to exclude a small effusion.", "Pleural Effusion", -1),
    # hedges
    ("Possible mild edema.", "Edema", -1),
    ("Opacity concerning for pneumonia.", "Pneumonia", -1),
    ("This may represent atelectasis.", "Atelectasis", -1),
    ("Atelectasis versus pneumonia in the right base.", "Atelectasis", -1),
    ("Atelectasis versus pneumonia in the right base.", "Pneumonia", -1),
    ("Likely atelectasis rather than pneumonia.", "Atelectasis", -1),
    ("Likely atelectasis rather than pneumonia.", "Pneumonia", -1),
    ("Question of a small pneumothorax.", "Pneumothorax", -1),
    # positive
    ("Small left pleural effusion.", "Pleural Effusion", 1),
    ("The heart is enlarged.", "Cardiomegaly", 1),
    ("Mild cardiomegaly.", "Cardiomegaly", 1),
    ("Borderline cardiomegaly.", "Cardiomegaly", 1),
    ("Borderline heart size.", "Cardiomegaly", 1),
    ("Heart size borderline enlarged, mediastinal contours appear similar to prior.", "Cardiomegaly", 1),
    ("No change in the small left effusion.", "Pleural Effusion", 1),
    ("Right lower lobe consolidation.", "Consolidation", 1),
    # scope ends
    ("No pneumothorax, but there is a small effusion.", "Pleural Effusion", 1),
    ("No cardiomegaly with bilateral small pleural effusions.", "Pleural Effusion", 1),
    ("No cardiomegaly with bilateral small pleural effusions.", "Cardiomegaly", 0),
]


@pytest.mark.parametrize("text,observation,expected", CASES)
def test_label_rules(nlp, text, observation, expected):
    assert nlp(text)._.labels[observation] == expected


def test_assertion_cannot_exclude_is_uncertain(nlp):
    doc = nlp("Pleural effusion cannot be excluded.")
    (ent,) = [e for e in doc.ents if e._.concepts]
    assert ent._.certainty == "uncertain"


def test_anatomy_is_always_present(nlp):
    doc = nlp("No effusion in the left lung.")
    assert all(e._.certainty == "definitely present" for e in doc.ents if e.label_ == "Anatomy")


def test_modifier_inherits_negation(nlp):
    doc = nlp("No focal airspace disease.")
    assert {e.text: e._.certainty for e in doc.ents}["focal"] == "definitely absent"


def test_empty_context_token_matcher_is_skipped_and_a_used_one_kept(nlp):
    """radtool's shipped ConText rules are literals: medspaCy's empty token Matcher is replaced (no
    [W036] warning at every Doc); a rule with a token pattern keeps the real Matcher, and it matches."""
    import warnings

    from radtool.pipeline.assertion import _NoMatches, build_context

    context = nlp.get_pipe("radtool_assertion").context
    assert isinstance(context._ConText__matcher._MedspacyMatcher__matcher, _NoMatches)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = nlp("No pneumothorax. Possible small left effusion.")
    assert [e._.certainty for e in doc.ents if e.text in ("pneumothorax", "effusion")] == ["definitely absent", "uncertain"]

    rules = [{"literal": "free of", "category": "NEGATED_EXISTENCE", "pattern": [{"LOWER": "free"}, {"LOWER": "of"}],
              "direction": "FORWARD"}]
    custom = build_context(nlp, name="custom_context", rules=rules)
    kept = custom._ConText__matcher._MedspacyMatcher__matcher
    assert not isinstance(kept, _NoMatches) and len(kept) == 1
