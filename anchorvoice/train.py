"""``python -m anchorvoice.train NAME ...`` / ``torchrun -m anchorvoice.train``: same as ``anchorvoice train``."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from anchorvoice.engine.cli.train import main

    sys.exit(main())
