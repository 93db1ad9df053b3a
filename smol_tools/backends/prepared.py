"""One render and one tokenization per round, shared by the agent's context check and the turn.

The backends that render prompts themselves (in process, llama-server fed token ids) answer
the agent's `count_prompt_tokens` with the exact token list the next turn will feed. Keeping
that list until the turn starts saves a second render and a second tokenization every round.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Callable, Mapping, Sequence

from ..chat_format import render_prompt

Tokenizer = Callable[[str, bytes], list[int]]  # (session id, prompt bytes) -> the tokens to feed


class PreparedPrompts:
    def __init__(self, tokens_for: Tokenizer) -> None:
        self.tokens_for = tokens_for
        self._prepared: dict[str, tuple[str, bytes, list[int]]] = {}  # session -> (key, prompt, tokens)
        self._lock = threading.Lock()

    def prepare(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None,
                enable_thinking: bool, session_id: str) -> tuple[bytes, list[int]]:
        # The key is a JSON dump of the inputs: ~20x cheaper than rendering them again.
        key = json.dumps([messages, tools, enable_thinking], ensure_ascii=False, default=str)
        with self._lock:
            cached = self._prepared.get(session_id)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        prompt = render_prompt(messages, tools, add_generation_prompt=True, enable_thinking=enable_thinking).encode()
        tokens = self.tokens_for(session_id, prompt)
        with self._lock:
            self._prepared[session_id] = (key, prompt, tokens)
        return prompt, tokens

    def take(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None,
             enable_thinking: bool, session_id: str) -> tuple[bytes, list[int]]:
        """The prompt and tokens for the turn starting now; the turn changes what they assumed."""
        prepared = self.prepare(messages, tools, enable_thinking, session_id)
        self.forget(session_id)
        return prepared

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._prepared.pop(session_id, None)


ASSISTANT_START = b"<|im_start|>assistant\n"


def divergence_reason(prompt: bytes, held: bytes) -> str:
    """Why `prompt` does not extend `held` (the text the model state holds), in a few words."""
    same = len(os.path.commonprefix([prompt, held]))
    if same == len(prompt):
        return "the prompt repeats what the model already read"
    # The template keeps reasoning only after the last user query (the model's training format):
    # an earlier assistant turn lost its `<think>` block right after its header.
    turn = prompt.rfind(ASSISTANT_START, 0, same)
    body = turn + len(ASSISTANT_START)
    if turn >= 0 and same - body < len(b"<think>") and held[body:].startswith(b"<think>") \
            and not prompt[body:].startswith(b"<think>"):
        return "previous reasoning dropped from the prompt"
    return "an earlier message changed"
