"""Optional parsing backends (the default spaCy pipeline needs none of them)."""
