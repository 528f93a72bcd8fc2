"""anchorvoice: plugin-based real-time voice conversion and text-to-speech for virtual anchors.

The installed package is one import namespace; its floors import only downward:

* ``anchorvoice.errors``, ``anchorvoice.frames``, ``anchorvoice.audio_io`` - the core every floor
  shares: the one exceptions module, the frames passed between stages, audio files and resampling;
* ``anchorvoice.streaming`` - rings, chunking, SOLA, stream resampling, the live runner, device backends,
  the virtual microphone;
* ``anchorvoice.engine`` - the host: hooks, plugin manager, stages, pipelines, voices, safe checkpoint
  loading, the control server (it knows no model);
* ``anchorvoice.plugins`` (every built-in capability) and ``anchorvoice.obs_bridge`` (OBS and avatar
  bridges), side by side on top of the engine;
* ``anchorvoice.engine.cli`` - the command line, the top floor, which nothing imports.

In the source tree ``engine/``, ``plugins/``, ``streaming/``, ``obs_bridge/`` and ``configs/`` stay at the
top; this folder links them (relative symlinks) so that Python, the tests, mypy and the wheel see one
``anchorvoice`` package. ``tests/test_layers.py`` keeps the floors honest.
"""

__version__ = "0.1.0"
