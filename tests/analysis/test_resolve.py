import numpy as np
import pytest

from radtool.analysis.resolve import apply_policy, label_matrix, resolve_similarity
from radtool.analysis.similarity import SimilarityIndex

from .records import ABSENT, PRESENT, UNCERTAIN, record

COLUMNS = ["Pneumonia", "Edema"]


def _corpus():
    records = [
        record("q", nps=["opacity", "lower lobe"], entities=[("pneumonia", UNCERTAIN)]),
        record("n1", nps=["opacity", "lower lobe"], entities=[("pneumonia", PRESENT)]),
        record("n2", nps=["opacity", "lower lobe", "x"], entities=[("pneumonia", PRESENT)]),
        record("far", nps=["opacity"], entities=[("pneumonia", ABSENT)]),
        record("unrelated", nps=["hernia"]),
    ]
    rows = [{"Pneumonia": "-1", "Edema": "-1"}, {"Pneumonia": "1", "Edema": ""}, {"Pneumonia": "1", "Edema": ""},
            {"Pneumonia": "0", "Edema": ""}, {"Pneumonia": "", "Edema": ""}]
    return records, label_matrix(rows, COLUMNS)


def test_similarity_vote_weights_nearest_certain_reports():
    records, labels = _corpus()
    res = resolve_similarity(SimilarityIndex.from_records(records), labels, COLUMNS, k=10)
    pneumonia = next(r for r in res if r.column == "Pneumonia")
    assert pneumonia.new == 1 and pneumonia.neighbors[:2] == [1, 2] and 3 in pneumonia.neighbors
    assert pneumonia.weights == sorted(pneumonia.weights, reverse=True)
    assert 0.5 < pneumonia.vote < 1
    edema = next(r for r in res if r.column == "Edema")
    assert edema.new == -1 and edema.neighbors == []  # no report is certain about edema


def test_k_one_takes_the_nearest():
    records, labels = _corpus()
    labels[1, 0] = 0  # the nearest certain report now says absent
    res = resolve_similarity(SimilarityIndex.from_records(records), labels, COLUMNS, k=1)
    assert next(r for r in res if r.column == "Pneumonia").new == 0


@pytest.mark.parametrize("policy,expected", [("keep", -1), ("u_ones", 1), ("u_zeros", 0)])
def test_fixed_policies(policy, expected):
    _records, labels = _corpus()
    out = apply_policy(labels, policy, COLUMNS)
    assert out[0, 0] == expected and out[1, 0] == 1 and np.isnan(out[1, 1])


def test_calibrated_policy_compares_the_vote_with_the_base_rate():
    from radtool.analysis.resolve import Resolution, calibrate, likelihood_ratio, positive_rates

    labels = np.array([[-1.0], [1], [1], [1], [0]])  # positive rate among certain reports: 3/4
    assert positive_rates(labels)[0] == pytest.approx(0.75)
    strong = Resolution(0, "Pneumonia", -1, 1, 1.0, [1, 2, 3], [1.0, 1.0, 1.0])  # v' = (3 + .75) / 4
    weak = Resolution(0, "Pneumonia", -1, 1, 0.75, [1, 4], [0.75, 0.25])  # the vote equals the base rate: LR 1
    against = Resolution(0, "Pneumonia", -1, 0, 0.0, [4], [3.0])  # v' = .75 / 4
    none = Resolution(0, "Pneumonia", -1, -1, None, [], [])
    assert likelihood_ratio(strong, 0.75) == pytest.approx((3.75 / 4 / (0.25 / 4)) / 3)
    assert likelihood_ratio(weak, 0.75) == pytest.approx(1.0)
    out = calibrate([strong, weak, against, none], labels, ["Pneumonia"], lr=4, fallback=-1)
    assert [r.new for r in out] == [1, -1, 0, -1]
    out = calibrate([strong, weak, against, none], labels, ["Pneumonia"], lr=6, fallback=0)
    assert [r.new for r in out] == [0, 0, 0, 0]  # LR 5 < 6: not confident → fallback


def test_calibrated_policy_applies_its_resolutions():
    records, labels = _corpus()
    from radtool.analysis.resolve import calibrate

    res = calibrate(resolve_similarity(SimilarityIndex.from_records(records), labels, COLUMNS), labels, COLUMNS, lr=1.0, fallback=0)
    out = apply_policy(labels, "calibrated", COLUMNS, res)
    assert out[0, 0] in (0, 1) and out[0, 1] == 0  # no vote on edema → fallback 0
