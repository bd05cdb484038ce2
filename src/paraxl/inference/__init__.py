"""Inference backends other than PyTorch.

``onnx_export`` writes a model folder's ONNX files (fp32 + int8) and their record;
``onnx_encoder.OnnxEncoder`` runs them on ONNX Runtime behind the ``SentenceEncoder``
interface. Load them through ``paraxl.modeling.sources.load_encoder(spec, backend="onnx")``.
"""
