"""smol-tools: packaging, runtimes and a tool-calling agent for smol-tools-4b-32k."""

__version__ = "0.1.0"
