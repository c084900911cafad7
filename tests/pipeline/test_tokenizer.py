import pytest


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Chest x-ray today.", ["Chest", "x-ray", "today", "."]),
        ("T-spine degenerative change.", ["T-spine", "degenerative", "change", "."]),
        ("Patient s/p CABG, r/o pneumonia.", ["Patient", "s/p", "CABG", ",", "r/o", "pneumonia", "."]),
        ("Atelectasis and/or scarring.", ["Atelectasis", "and/or", "scarring", "."]),
        ("1. No acute disease.", ["1.", "No", "acute", "disease", "."]),
        ("Nodule measures 4.5x6.8cm.", ["Nodule", "measures", "4.5", "x", "6.8", "cm", "."]),
        ("A 1.2 cm nodule.", ["A", "1.2", "cm", "nodule", "."]),
        ("There are no XXXX of effusion.", ["There", "are", "no", "XXXX", "of", "effusion", "."]),
    ],
)
def test_tokenizer_keeps_report_shorthand(nlp, text, expected):
    assert [t.text for t in nlp.make_doc(text)] == expected
