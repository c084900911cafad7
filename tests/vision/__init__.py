"""Tests for the radtool-vision plugin (plugins/vision)."""
