"""Agreement figures shared by the benches and the precision tests."""

from __future__ import annotations

from typing import Any

import numpy as np


def si_snr_db(ref: Any, est: Any) -> float:
    """Scale-invariant SNR (dB) of ``est`` against ``ref`` (1-D arrays or tensors of equal length), means removed."""
    a = np.asarray(ref, np.float64).ravel()
    b = np.asarray(est, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    proj = (b @ a) / (a @ a) * a
    return float(10 * np.log10((proj @ proj) / ((b - proj) @ (b - proj))))
