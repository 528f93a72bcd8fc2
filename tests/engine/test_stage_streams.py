"""StageStreams: per-stage CUDA streams on a GPU, the same calls as no-ops on CPU."""

from __future__ import annotations

import pytest

from anchorvoice.engine.stage_streams import StageStreams
from anchorvoice.errors import DeviceError


def test_stage_streams_are_no_ops_on_cpu() -> None:
    streams = StageStreams(["extract", "decode"], device="cpu")
    assert not streams.enabled
    with streams.use("extract"):
        streams.record("extract")
        streams.wait("decode", before="extract")
    streams.synchronize()
    import torch

    assert StageStreams(["decode"], device="auto").enabled == torch.cuda.is_available()

    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA"):
            StageStreams(["decode"], device="cuda")
