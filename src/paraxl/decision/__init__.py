"""Paraphrase decisions: cosine scores of pairs, a fitted threshold and a calibrated probability.

``calibration``: ``fit_calibration`` (the record it returns, and its file
``paraxl_calibration.json`` in the model folder, are :mod:`paraxl.loading.calibration_file`).
``decider``: ``decider_for(model, threshold)``, the one rule for "calibration, or an explicit
threshold, or refuse", and the ``Decider`` protocol with ``FixedThreshold``.
``scorers``: the ``PairScorer`` contract and the cosine scorers (``score_pairs``); ``threshold``: fitted
accuracy thresholds; ``pairs``: the pair-file reading behind ``paraxl calibrate`` / ``paraxl pi``.
``cascade``: the bi/cross-encoder cascade (uncertainty band on cosine, fitted on validation for a
cross-encoder budget or an accuracy target); ``fusion``: logistic regression on (cosine, cross-encoder
logit); ``two_model_file``: their rule file, with both models' fingerprints; ``model_scorers``: a model
spec to its pair scorer, bi-encoder or cross-encoder; ``rule_decider``: a loaded cascade/fusion applied
per pair with every score (the service's ``/paraphrase``); ``rerank``: a cross-encoder reordering search hits.
Nothing is imported here, so that importing the package costs nothing.
"""
