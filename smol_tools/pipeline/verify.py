"""Prove a GGUF works before anyone downloads it, in a child process (a llama.cpp abort on a
broken file must fail that file's verification, not the whole build):

1. it loads in llama-cpp-python;
2. its embedded template is the chosen one and renders the render corpus, through
   llama-cpp-python's own chat formatter, byte-identically to our renderer;
3. llama.cpp treats every stop string of templates/params.json as an end-of-generation token;
4. with `turns` (the tiny test model's scripted conversations), greedy decoding reproduces every
   scripted turn exactly; without it, a short greedy generation from a tool prompt must run.

`python -m smol_tools.pipeline.verify GGUF --template FILE [--turns FILE]` prints the JSON result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..chat_format import REASONING_FIELDS, load_params, render_prompt
from .children import die_with_parent
from .drift import load_corpus, render_case

SMOKE_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@dataclass
class VerifyResult:
    file: str
    loads: bool = False
    template_matches: bool = False
    corpus_cases: int = 0
    corpus_mismatches: list[str] = field(default_factory=list)
    stops_are_eog: dict[str, bool] = field(default_factory=dict)
    turns_checked: int = 0
    turn_failures: list[dict[str, str]] = field(default_factory=list)
    smoke_output: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.error is None and self.loads and self.template_matches
                and not self.corpus_mismatches and bool(self.stops_are_eog)
                and all(self.stops_are_eog.values()) and not self.turn_failures)

    def problems(self) -> list[str]:
        found = []
        if self.error:
            found.append(self.error.strip().splitlines()[-1] if self.error.strip() else "error")
        if self.loads and not self.template_matches:
            found.append("embedded template is not the chosen one")
        if self.corpus_mismatches:
            found.append(f"corpus renders differently: {', '.join(self.corpus_mismatches[:3])}")
        for stop, eog in self.stops_are_eog.items():
            if not eog:
                found.append(f"{stop} is not an end-of-generation token")
        if self.turn_failures:
            names = ", ".join(f["turn"] for f in self.turn_failures[:3])
            found.append(f"{len(self.turn_failures)}/{self.turns_checked} scripted turns differ ({names})")
        return found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VerifyResult":
        return cls(**{k: v for k, v in data.items() if k != "ok"})


def verify_gguf(path: Path, template_file: Path, *, turns_file: Path | None = None,
                threads: int | None = None, timeout: float = 3600) -> VerifyResult:
    """Run the checks on `path` in a child process and return what it found."""
    cmd = [sys.executable, "-m", "smol_tools.pipeline.verify", str(path), "--template", str(template_file)]
    if turns_file is not None:
        cmd += ["--turns", str(turns_file)]
    if threads:
        cmd += ["--threads", str(threads)]
    started = time.monotonic()
    try:
        # Tied to the pipeline: a killed build leaves no verifier running on (up to an hour).
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        return VerifyResult(path.name, error=f"verification timed out after {timeout:.0f}s",
                            seconds=round(time.monotonic() - started, 2))
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return VerifyResult(path.name, error=f"verifier exited {done.returncode}: {done.stderr[-1500:]}",
                            seconds=round(time.monotonic() - started, 2))
    return VerifyResult.from_dict(json.loads(lines[-1]))


# ---- the child process ------------------------------------------------------------------------

def _alias_reasoning(message: dict[str, Any]) -> dict[str, Any]:
    # transformers copies `thinking`/`reasoning` into `reasoning_content` before rendering;
    # llama-cpp-python passes messages through as given. Give both renderers the same input.
    reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k) is not None), None)
    return message if reasoning is None else {**message, "reasoning_content": reasoning}


def scripted_turns(turns_file: Path) -> tuple[list[dict], list[tuple[str, list[dict], bool, str]]]:
    """(tools, [(name, history, thinking, raw)]) from a scripted-conversations file."""
    data = json.loads(turns_file.read_text(encoding="utf-8"))
    turns = []
    for conversation in data["conversations"]:
        history: list[dict] = []
        for entry in conversation["messages"]:
            if entry["role"] == "assistant":
                name = f"{conversation['id']}#{sum(1 for m in history if m['role'] == 'assistant')}"
                turns.append((name, list(history), conversation["thinking"], entry["raw"]))
                history.append(entry["message"])
            else:
                history.append(entry)
    return data["tools"], turns


def _check(path: Path, template: str, turns_file: Path | None, threads: int) -> VerifyResult:
    import llama_cpp  # start-up time: llama_cpp loads its native library
    from llama_cpp import Llama  # start-up time: llama_cpp loads its native library
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # start-up time: llama_cpp loads its native library


    result = VerifyResult(path.name)
    llm = Llama(model_path=str(path), n_ctx=4096, n_threads=threads, verbose=False)
    result.loads = True
    embedded = llm.metadata.get("tokenizer.chat_template")
    result.template_matches = embedded == template
    eos_text = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", errors="replace")
    if embedded is not None:
        cases = load_corpus()
        result.corpus_cases = len(cases)
        for case in cases:
            formatter = Jinja2ChatFormatter(embedded, eos_token=eos_text, bos_token="",
                                            add_generation_prompt=case["add_generation_prompt"])
            try:
                theirs = formatter(messages=[_alias_reasoning(m) for m in case["messages"]],
                                   tools=case["tools"], enable_thinking=case["enable_thinking"]).prompt
            except Exception as exc:  # noqa: BLE001 - any refusal is a mismatch to report
                theirs = f"<error {exc}>"
            if theirs != render_case(case, template):
                result.corpus_mismatches.append(case["id"])
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    stops = load_params().stop
    for stop in stops:
        ids = llm.tokenize(stop.encode(), add_bos=False, special=True)
        result.stops_are_eog[stop] = len(ids) == 1 and bool(llama_cpp.llama_vocab_is_eog(vocab, ids[0]))
    if turns_file is not None:
        tools, turns = scripted_turns(turns_file)
        for name, history, thinking, raw in turns:
            prompt = render_prompt(history, tools, add_generation_prompt=True, enable_thinking=thinking,
                                   template=template)
            out = llm.create_completion(prompt, max_tokens=256, temperature=0.0, stop=list(stops))
            choice = out["choices"][0]
            # The runtime consumes the stop token: the turn must end on it, not on max_tokens.
            if choice["text"] + "<|im_end|>" != raw or choice["finish_reason"] != "stop":
                result.turn_failures.append({"turn": name, "got": choice["text"][:300]})
        result.turns_checked = len(turns)
    else:
        prompt = render_prompt([{"role": "user", "content": "What is the weather in Paris?"}],
                               [SMOKE_TOOL], enable_thinking=False, template=template)
        out = llm.create_completion(prompt, max_tokens=48, temperature=0.0, stop=list(stops))
        result.smoke_output = out["choices"][0]["text"]
    llm.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gguf", type=Path)
    parser.add_argument("--template", type=Path, required=True, help="file holding the chosen template")
    parser.add_argument("--turns", type=Path, help="scripted conversations whose turns must reproduce")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        result = _check(args.gguf, args.template.read_text(encoding="utf-8"), args.turns, args.threads)
    except Exception as exc:  # noqa: BLE001 - reported as this file's failure
        result = VerifyResult(args.gguf.name, error=f"{type(exc).__name__}: {exc}")
    result.seconds = round(time.monotonic() - started, 2)
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
