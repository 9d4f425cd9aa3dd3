"""Bundled fonts (OFL) and their manifest."""
