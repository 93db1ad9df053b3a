"""Self-consistency of a suite: the replayed calls of every step must score perfectly against
its expected calls, so a model that reproduces the intended turn gets full marks."""

from __future__ import annotations

import json

from .metrics import score_step
from .suite import Suite


def replay_problems(suite: Suite) -> list[str]:
    problems = []
    seen: dict[str, tuple[str, str]] = {}
    for case in suite.cases:
        assistants = [m for m in case.messages if m["role"] == "assistant"]
        for step, message in zip(case.steps(), assistants):
            calls = [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []]
            score = score_step(step.expected, calls, 0, case.schemas)
            context = json.dumps([step.history, sorted(case.schemas), case.thinking], sort_keys=True)
            wanted = json.dumps(step.expected, sort_keys=True)
            if context in seen and seen[context][1] != wanted:
                problems.append(f"{case.id} step {step.index}: the same context as {seen[context][0]} expects "
                                f"different calls")
            seen.setdefault(context, (f"{case.id} step {step.index}", wanted))
            if not score.exact:
                problems.append(f"{case.id} step {step.index}: the replayed calls {calls} do not match "
                                f"the expected calls {step.expected} ({score.to_dict()})")
    return problems
