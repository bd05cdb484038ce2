"""Inference backends other than PyTorch.

``onnx_files`` holds what both ONNX modules share (the export's layout and record, session
options); ``onnx_export`` writes a model folder's ONNX files (fp32 + int8) and their record;
``onnx_encoder.OnnxEncoder`` runs them on ONNX Runtime behind the ``SentenceEncoder``
interface. Load them through ``paraxl.loading.backends.load_encoder(spec, backend="onnx")``
(or ``paraxl.loading.model.load_model``). A cross-encoder's export (the same files, a logit graph):
``cross_encoder_export`` writes it, checked by ``cross_encoder_check``, and
``cross_encoder_onnx.OnnxCrossEncoderScorer`` scores pairs with it
(``paraxl.decision.model_scorers.cross_encoder_scorer`` on backend onnx / onnx-int8).
"""
