"""Corpus analytics over parsed reports: counts and charts, report similarity, uncertainty resolution,
and pictures of one report. Pure functions over report records (the lines of ``graphs.jsonl``)."""

from .corpus import Corpus, load_corpus
from .features import FAMILIES, feature_sets, normalize
from .similarity import SimilarityIndex, overlap_similarity, top_k_neighbors
from .stats import corpus_stats

__all__ = [
    "Corpus",
    "load_corpus",
    "FAMILIES",
    "feature_sets",
    "normalize",
    "SimilarityIndex",
    "overlap_similarity",
    "top_k_neighbors",
    "corpus_stats",
]
