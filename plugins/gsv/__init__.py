"""GPT-SoVITS v2 family: checkpoints load through :mod:`anchorvoice.plugins.gsv.checkpoints`, models are own code.

Stages (registered by :mod:`anchorvoice.plugins.gsv.plugin`): ``hubert`` feature extractor, ``gsv-rvq``
tokenizer, and the T2S prosody model, SoVITS decoder and vocoder.
"""
