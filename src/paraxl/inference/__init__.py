"""Inference backends other than PyTorch.

``onnx_files`` holds what both ONNX modules share (the export's layout and record, session
options); ``onnx_export`` writes a model folder's ONNX files (fp32 + int8) and their record;
``onnx_encoder.OnnxEncoder`` runs them on ONNX Runtime behind the ``SentenceEncoder``
interface. Load them through ``paraxl.loading.backends.load_encoder(spec, backend="onnx")``
(or ``paraxl.loading.model.load_model``).
"""
