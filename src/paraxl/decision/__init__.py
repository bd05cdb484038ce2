"""Paraphrase decisions: cosine scores of pairs, a fitted threshold and a calibrated probability.

``calibration``: :class:`~paraxl.decision.calibration.Calibration`, ``fit_calibration``,
``load_calibration``/``save_calibration`` (``paraxl_calibration.json`` in the model folder).
``pairs``: ``score_pairs`` and the pair-file reading behind ``paraxl calibrate`` / ``paraxl pi``.
Nothing is imported here, so that importing the package costs nothing.
"""
