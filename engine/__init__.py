"""anchorvoice engine: the host (hooks, plugins, stages, pipelines, voices, control server, CLI)."""

__version__ = "0.1.0"
