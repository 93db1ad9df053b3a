"""Build the GGUF quants: the same command as `smol-tools package`, runnable from a checkout.

    python packaging/build_quants.py [SOURCE] [--out DIR] [--quants ...] [--publish] ...

Defaults (model name, Hub repos, quant ladder, imatrix types) are in
smol_tools/pipeline/data/config.toml; the calibration conversations for the imatrix are in
smol_tools/pipeline/data/calibration/ (package data, so an installed wheel packages too). All
logic lives in smol_tools/pipeline/; see packaging/README.md. Needs smol_tools installed
(scripts/setup.sh installs the checkout in editable mode).
"""

import sys

from smol_tools.pipeline.cli_args import main  # installed by scripts/setup.sh (pip install -e .)

if __name__ == "__main__":
    sys.exit(main())
