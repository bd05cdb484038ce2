"""Model loading: a model spec + an inference backend -> one model identity (above modeling and inference).

``specs``: spec -> local folder (bundled models, folders, Hugging Face Hub).
``backends``: the inference backends (torch, onnx, onnx-int8) and ``load_encoder``.
``model``: ``load_model(spec, backend) -> LoadedModel`` (folder, weights fingerprint, encoder,
calibration); ``resolve_model`` for the same identity before the weights load.
``calibration_file``: the model folder's ``paraxl_calibration.json`` record.
``soup``: weight averaging of several model folders into a new one.
Nothing is imported here, so that importing the package costs nothing.
"""
