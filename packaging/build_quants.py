"""Build the GGUF quants: the same command as `smol-tools package`, runnable from a checkout.

    python packaging/build_quants.py [SOURCE] [--out DIR] [--quants ...] [--publish] ...

Defaults (model name, Hub repos, quant ladder, imatrix types) are in packaging/config.toml;
the calibration conversations for the imatrix are in packaging/calibration/. All logic lives
in smol_tools/pipeline/; see packaging/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

from smol_tools.pipeline.cli_args import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
