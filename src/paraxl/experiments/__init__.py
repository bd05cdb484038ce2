"""Experiment tables: train variants of a config, evaluate them, aggregate over seeds.

Orchestration only; the methods live in :mod:`paraxl.training` and :mod:`paraxl.evaluation`.
"""
