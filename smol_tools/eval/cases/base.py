"""The vocabulary of the case scripts: calls, a fixed-time tool session, and the script builder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ...tools import ToolSession, ToolSettings, default_registry
from ..generate import expand, is_generated

FIXED_NOW = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)  # a Saturday morning
WORKSPACE = {
    "todo.txt": "buy milk\ncall the plumber\nrenew passport",
    "notes/meeting.md": "# Team sync 2026-03-12\n- Launch moved to 2026-04-02\n- Owner: Priya\n- Budget approved: 18,500 USD",
    "notes/ideas.txt": "1. Offline mode for the app\n2. Dark theme\n3. Export reports as PDF",
    "config.yaml": "server:\n  port: 8080\n  workers: 4\nlogging:\n  level: info",
    "data/readme.txt": "Sales exports, one CSV per month. Amounts in USD.",
    "data/q1_totals.txt": "January 48210\nFebruary 51377\nMarch 49802",
    "data/prices.csv": "item,price_usd\nwidget,4.50\ngadget,12.00\ngizmo,7.25",
    "shopping.txt": "eggs\nbread",
    "contacts.txt": "Dana Whitfield <dana@example.com>\nOmar Haddad <omar@example.com>",
    "reports/2026-02.md": "# February report\nRevenue: 51,377 USD\nNew customers: 38",
    "hello.py": "print('hello from the workspace')",
}


def text_of(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)


@dataclass
class C:
    """One call in a script: what the replayed history holds (`args`), how it is scored
    (`exp` replaces argument values with matchers, `opt` lists optional arguments), and its
    result (`result`, or the real tool's output when None)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    exp: dict[str, Any] | None = None
    opt: dict[str, Any] | None = None
    result: Any = None

    def expected(self) -> dict[str, Any]:
        call: dict[str, Any] = {"name": self.name, "arguments": {**self.args, **(self.exp or {})}}
        if self.opt:
            call["optional"] = self.opt
        return call

    @property
    def plain(self) -> bool:
        return not self.exp and not self.opt


class Tools:
    """The demo tools at a fixed time over a seeded workspace; one fresh session per case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        seed = root / "seed"
        for rel, text in WORKSPACE.items():
            (seed / rel).parent.mkdir(parents=True, exist_ok=True)
            (seed / rel).write_text(text + "\n", encoding="utf-8")
        self.settings = ToolSettings(workspace_seed=seed, clock=lambda: FIXED_NOW, cache_dir=root / "cache")
        self.registry = default_registry()
        self.session_type = ToolSession
        self.session = None

    def fresh(self) -> None:
        self.session = self.session_type.create(root=self.root / "sessions", settings=self.settings)

    def run(self, call: C) -> str:
        if call.result is not None:
            return text_of(call.result)
        return self.registry.execute(call.name, dict(call.args), self.session).content


class Script:
    """Builds one case: user turns, assistant steps (calls or answers) and replayed results."""

    def __init__(self, tools: Tools, case_id: str, scenario: str, *, thinking: bool = True,
                 system: str | None = None, notes: str = "") -> None:
        tools.fresh()
        self.tools = tools
        self.case: dict[str, Any] = {"id": case_id, "scenario": scenario, "thinking": thinking, "messages": []}
        if notes:
            self.case["notes"] = notes
        if system:
            self.case["messages"].append({"role": "system", "content": system})
        self.results: list[str] = []

    def user(self, text: str) -> "Script":
        self.case["messages"].append({"role": "user", "content": text})
        return self

    def calls(self, *calls: C, content: str = "") -> "Script":
        message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": [
            {"type": "function", "function": {"name": c.name, "arguments": c.args}} for c in calls]}
        if not all(c.plain for c in calls):
            message["expected"] = [c.expected() for c in calls]
        self.case["messages"].append(message)
        self.results = []
        for call in calls:
            if is_generated(call.result):  # long-case filler: kept as its spec, expanded when loaded
                content: Any = call.result
                self.results.append(expand(content))
            else:
                content = self.tools.run(call)
                self.results.append(content)
            self.case["messages"].append({"role": "tool", "name": call.name, "content": content})
        return self

    def result_json(self, index: int = 0) -> Any:
        """The parsed result of the last step's call `index` (scripts derive later calls from it)."""
        return json.loads(self.results[index])

    def answer(self, text: str) -> "Script":
        self.case["messages"].append({"role": "assistant", "content": text})
        return self


NewScript = Callable[..., Script]
