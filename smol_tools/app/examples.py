"""Example prompts for the model card's scenarios. The first six are the tiny offline model's
scripted conversations, so they run without the real model (greedy decoding, the demo
workspace); the last one needs the real model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    scenario: str
    prompt: str
    offline: bool  # the tiny offline model knows it


EXAMPLES: tuple[Example, ...] = (
    Example("Single tool", "What is the weather in Paris?", True),
    Example("Parallel calls", "Compare the weather in Tokyo and Lima.", True),
    Example("Sequential calls", "Compute 17 * 23, then add 100 to it.", True),
    Example("No tool needed", "Say hello in French.", True),
    Example("Reasoning, then a call", "What time is it in Tokyo?", True),
    Example("Error recovery", "Show me notes.txt.", True),
    Example("Long multi-step", "List the files in the workspace, read todo.txt, add 'call mum' to it, "
            "then email the updated list to me@example.com and put a reminder in my calendar for "
            "tomorrow at 9:00.", False),
)


def example_rows(tiny: bool) -> list[list[str]]:
    """Rows for gr.Examples: the offline ones first when the tiny model is running."""
    chosen = [e for e in EXAMPLES if e.offline] if tiny else list(EXAMPLES)
    return [[e.prompt] for e in chosen]


def example_labels(tiny: bool) -> list[str]:
    chosen = [e for e in EXAMPLES if e.offline] if tiny else list(EXAMPLES)
    return [f"{e.scenario}: {e.prompt}" for e in chosen]
