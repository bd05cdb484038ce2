"""Bitext mining between two corpora (``paraxl mine`` and the BUCC task)."""
