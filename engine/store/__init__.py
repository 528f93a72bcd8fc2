"""The voice store: content-addressed model blobs, voice versions, and safe sharing of a home.

* :mod:`.files` -- atomic writes and the home's file lock (several engine processes may share a home).
* :mod:`.blobs` -- ``<home>/blobs/<sha256>``: model weights as safetensors, config in the header.
* :mod:`.history` -- every change of a voice is a numbered version under ``voices/<folder>/versions``.

Nothing here knows a model family: a plugin turns its own files into tensors + metadata through the
``import_model`` hook, and reads a blob back through :func:`.blobs.read_blob`.
"""
