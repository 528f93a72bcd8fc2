"""Piper voices (ONNX VITS) run with onnxruntime: phonemes from the ``espeak-ng`` program, mapped
through the voice's ``phoneme_id_map``. No code of ``piper-tts``/``piper-phonemize`` (GPL) is used."""
