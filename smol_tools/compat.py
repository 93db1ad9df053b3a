"""The oldest runtime versions that run smol-tools-4b-32k (GGUF architecture `qwen35`): one table
for the code (the model card's "Runs on" list, the Modelfiles' REQUIRES) and the one a test
checks docs/compatibility.md against. Where each floor comes from is in that document."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeFloor:
    runtime: str  # how the docs table's Runtime cell starts and the card names it
    minimum: str  # the version (a llama.cpp build tag `bNNNN` or a release number)
    note: str = ""  # what the floor is for, when it is not simply "loads the architecture"
    shown: str = ""  # the minimum as the card words it, when the bare version would mislead

    def card_line(self) -> str:
        return (f"- {self.runtime}: {self.shown or self.minimum} or newer"
                + (f" ({self.note})" if self.note else ""))


LLAMA_CPP_BUILD = "b7990"  # ggml-org/llama.cpp #19468, qwen35 support
LLAMA_CPP_PYTHON = "0.3.17"  # the first release vendoring a llama.cpp with #19468
OLLAMA = "0.17.5"  # the first that loads the layout llama.cpp's converter writes
VLLM = "0.16.1"  # the qwen3 reasoning parser handles a template that opens <think>

RUNTIME_FLOORS: tuple[RuntimeFloor, ...] = (
    RuntimeFloor("llama.cpp", LLAMA_CPP_BUILD, "`llama-server`, `llama-cli`"),
    RuntimeFloor("llama-cpp-python", LLAMA_CPP_PYTHON),
    RuntimeFloor("Ollama", OLLAMA),
    # LM Studio's engine versions do not say which llama.cpp they contain: the floor is the build.
    RuntimeFloor("LM Studio", LLAMA_CPP_BUILD, shown=f"a llama.cpp engine built on llama.cpp {LLAMA_CPP_BUILD}"),
    RuntimeFloor("vLLM", VLLM, "for the `qwen3` reasoning parser; vLLM serves the original checkpoint"),
)


def runs_on_markdown() -> str:
    """The card's list: one line per runtime, its minimum version and what it is for."""
    return "\n".join(floor.card_line() for floor in RUNTIME_FLOORS)
