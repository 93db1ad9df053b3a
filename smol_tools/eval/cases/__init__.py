"""The scripts the 200-case suite is built from (python -m smol_tools.eval.build_suite)."""

from .long import LONG_CASES
from .multi import COMPLEX, PARALLEL, SEQUENTIAL
from .single import ERROR_RECOVERY, NO_TOOL, REASONING, SINGLE

__all__ = ["COMPLEX", "ERROR_RECOVERY", "LONG_CASES", "NO_TOOL", "PARALLEL", "REASONING", "SEQUENTIAL", "SINGLE"]
