"""Tokenization tuned to chest X-ray reports.

Keeps report shorthand whole (``x-ray``, ``T-spine``, ``s/p``, ``r/o``, ``and/or``), keeps numbered
impression markers (``1.``) as one token, splits glued measurements (``4.5x6.8cm`` → ``4.5 x 6.8 cm``)
and leaves de-identification tokens (``XXXX``) alone.
"""

from __future__ import annotations

import spacy
from spacy.language import Language
from spacy.symbols import ORTH
from spacy.util import compile_infix_regex

SHORTHAND = [
    "x-ray", "x-rays", "X-ray", "X-rays", "X-RAY", "t-spine", "T-spine", "T-SPINE", "l-spine", "L-spine", "c-spine", "C-spine",
    "s/p", "S/P", "r/o", "R/O", "and/or", "h/o", "H/O", "c/w", "w/o", "b/l", "non-specific", "post-operative", "well-defined",
]
NUMBER_MARKERS = [f"{i}." for i in range(1, 31)] + [f"{i})" for i in range(1, 31)]
MEASUREMENT_INFIXES = [r"(?<=[0-9])[xX×](?=[0-9])", r"(?<=[0-9])(?=[xX×][0-9])"]


def customize_tokenizer(nlp: Language) -> Language:
    tokenizer = nlp.tokenizer
    for text in SHORTHAND + NUMBER_MARKERS:
        tokenizer.add_special_case(text, [{ORTH: text}])
    infixes = list(nlp.Defaults.infixes) + MEASUREMENT_INFIXES
    tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    return nlp


@spacy.registry.callbacks("radtool.customize_tokenizer.v1")
def create_tokenizer_callback():
    """For configs: ``[initialize.before_init] @callbacks = "radtool.customize_tokenizer.v1"``."""
    return customize_tokenizer
