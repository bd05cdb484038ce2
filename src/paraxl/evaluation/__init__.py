"""Evaluation: metrics, thresholds and benchmark tasks."""
