"""`smol-tools chat` setup and its one-shot mode.

Settings come the way the app takes them: the SMOL_TOOLS_* variables (smol_tools/app/config.py),
then the command line's flags over them. The model is resolved by model_source, the backend is
opened by the app's own code (app/backend_choice.py) and checked before the first prompt, and
the session is the app's `AppSession`, so `--once --json` prints a turn exactly as the app's
`/send` endpoint returns it and `/save` writes the app's session export.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .app.backend_choice import BackendChoice, open_backend, open_tiny
from .app.config import AppConfig, ConfigError, hub_spec
from .backends.base import CancelToken, SamplingParams
from .cli_errors import FAILED, CliError, UsageError
from .events import AgentFinished
from .model_source import DEFAULT, ModelSourceError, TINY, resolve_model

OFFLINE_HINT = ("For an offline session: `smol-tools chat --model tiny` (the small test model shipped "
                "with smol-tools) or `smol-tools chat --model ./model.gguf` (a GGUF you already have).")
SERVER_HINT = ("Start the server first (e.g. `llama-server --jinja -m model.gguf --port 8080`, or "
               "`ollama serve`), check --url, or chat in process: `smol-tools chat --model tiny`.")
DEFAULT_MAX_ROUNDS = 20  # the agent's default; SMOL_TOOLS_MAX_ROUNDS is the ceiling, as in the app
SAMPLING_KEYS = tuple(SamplingParams.__dataclass_fields__)


@dataclass(frozen=True)
class ChatOptions:
    """What the flags asked for; None means "as the environment (or the app's default) says"."""

    backend: str | None = None
    model: str | None = None
    quant: str | None = None
    url: str | None = None
    api_key: str | None = None
    n_ctx: int | None = None
    max_rounds: int | None = None
    system: str | None = None
    think: bool = True
    allow_code: bool = False
    no_network: bool = False


def looks_like_path(model: str) -> bool:
    """Anything that exists, or is written like a path, is a file the user means, never a repo id."""
    if not model:
        return False
    return (os.path.exists(os.path.expanduser(model)) or model.lower().endswith(".gguf")
            or model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep + os.sep in model)


def chat_config(options: ChatOptions, env: dict[str, str] | None = None) -> AppConfig:
    """The app's configuration from the environment, with the flags applied over it."""
    try:
        config = AppConfig.from_env(os.environ if env is None else env)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    changes: dict[str, Any] = {}
    for name in ("backend", "model", "url", "api_key", "n_ctx"):
        value = getattr(options, name)
        if value is not None:
            changes[name] = value
    if options.quant is not None:
        changes["quant"] = options.quant.strip().upper()
    if options.allow_code:
        changes["allow_code"] = True
    if options.no_network:
        changes["allow_network"] = False
    return replace(config, **changes)


def apply_model_variables(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> None:
    """`eval`'s flags left out take the variables the app and `chat` read (SMOL_TOOLS_BACKEND,
    _MODEL with _QUANT, _URL, _API_KEY, _N_CTX), so one environment points every command at the
    same model. A variable set wrong is a UsageError that names it."""
    config = chat_config(ChatOptions(), dict(os.environ if env is None else env))
    args.backend = args.backend or config.backend
    if args.model is None and config.model:
        # in process the quant joins a Hub repo, as in chat; a server's model is a name
        args.model = model_spec(config) if args.backend == "llama-cpp-python" else config.model
    args.url = args.url if args.url is not None else config.url
    args.api_key = args.api_key or config.api_key
    args.n_ctx = args.n_ctx or config.n_ctx


def model_spec(config: AppConfig) -> str:
    """What to load in process; a path stays a path (hub_spec would add `:QUANT` to `./x/y`)."""
    if looks_like_path(config.model):
        return config.model
    return hub_spec(config.model or DEFAULT, config.quant)


def model_error(exc: ModelSourceError, hint: str = OFFLINE_HINT) -> CliError:
    """A model reference that cannot be used: the user's to fix (exit 2) unless the Hub could not
    be reached or refused a login (exit 1: the same command can work later)."""
    message = str(exc)
    if hint and exc.kind in ("unreachable", "missing_file", "bad_spec"):
        message += "\n" + hint
    return CliError(message, FAILED) if exc.kind in ("unreachable", "auth") else UsageError(message)


def _explicit_fallback(env: dict[str, str]) -> bool:
    # The app falls back to the tiny model by default (a page must always answer); a command
    # someone typed answers with the error instead, unless they set the variable themselves.
    return (env.get("SMOL_TOOLS_FALLBACK_TINY") or "").strip().lower() in {"1", "true", "yes", "on"}


def open_session(options: ChatOptions, *, env: dict[str, str] | None = None,
                 say: Callable[[str], None] = lambda _text: None):
    """Open the backend the options name, check it, and return an `AppSession` on it.
    Raises CliError (with the exit status) when it cannot be used."""
    from .app.session import AppSession  # start-up time: app.session pulls in jsonschema, re2

    env = dict(os.environ if env is None else env)
    config = chat_config(options, env)
    if config.backend == "llama-cpp-python":
        opened = _open_in_process(config, env, say, BackendChoice, open_backend, open_tiny)
    else:
        choice = BackendChoice(config.backend, config.model, config.url, config.api_key, config.n_ctx)
        opened = open_backend(choice)
        if opened.backend is None:
            raise CliError(f"{opened.notice}\n{SERVER_HINT}")
        status = opened.backend.check()
        if not status.ok:
            raise CliError(f"{status.message}\n{SERVER_HINT}")
    session = AppSession.create(f"cli-{uuid.uuid4().hex[:8]}", opened, config)
    tools = session.default_tools()
    if config.allow_code and not opened.tiny:
        tools = [n for n in session.chat.registry.names() if n not in session.operator_off()]
    problems = session.set_tools(tools)
    if problems:
        raise CliError("; ".join(problems))
    rounds = options.max_rounds if options.max_rounds is not None else min(DEFAULT_MAX_ROUNDS, config.max_rounds)
    try:
        session.set_options(thinking=options.think, max_rounds=rounds)
    except ValueError as exc:
        raise UsageError(f"--max-rounds: {exc}") from None
    if options.system:
        session.chat.system_prompt = options.system
    session.touched = False
    return session


def _open_in_process(config: AppConfig, env: dict[str, str], say: Callable[[str], None],
                     BackendChoice: Any, open_backend: Any, open_tiny: Any) -> Any:
    spec = model_spec(config)
    try:
        resolved = resolve_model(spec)  # for tiny too: a quant that does not ship is refused here
        if resolved.tiny:
            return open_tiny()
    except ModelSourceError as exc:
        if exc.kind == "unreachable" and _explicit_fallback(env):
            say(f"{exc}\nSMOL_TOOLS_FALLBACK_TINY is on: using the tiny offline test model instead.")
            return open_tiny()
        raise model_error(exc) from None
    opened = open_backend(BackendChoice("llama-cpp-python", str(resolved.path), n_ctx=config.n_ctx))
    if opened.backend is None:
        raise CliError(opened.notice)
    opened.label = f"in-process llama-cpp-python · {resolved.describe()}"
    return opened


# ---- one turn -----------------------------------------------------------------------------------

class TurnStream:
    """One turn on a worker thread; the caller iterates its events (and may stop it). The worker
    always runs the turn to its end or to the stop, so the model is never left mid-generator."""

    _DONE = object()

    def __init__(self, session: Any, text: str) -> None:
        from .app.transcript import TurnBuilder  # start-up time: app.transcript pulls in jsonschema, re2

        limit = session.config.max_message_chars
        if len(text) > limit:
            raise UsageError(f"the message is {len(text):,} characters; the limit is {limit:,} "
                             "(SMOL_TOOLS_MAX_MESSAGE_CHARS)")
        self.session = session
        self.cancel = CancelToken()
        self.builder = TurnBuilder(text)
        self._events: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._work, args=(text,), daemon=True,
                                        name="smol-tools-chat-turn")
        self._thread.start()

    def _work(self, text: str) -> None:
        try:
            for event in self.session.chat.send(text, cancel=self.cancel):
                self._events.put(event)
        except Exception as exc:  # noqa: BLE001 - a failure below ends the turn visibly
            self._events.put(AgentFinished("error", f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            self._events.put(self._DONE)

    def events(self) -> Iterator[Any]:
        """Events as they come; wakes up often so Ctrl-C reaches the main thread promptly."""
        while True:
            try:
                event = self._events.get(timeout=0.1)
            except queue.Empty:
                continue
            if event is self._DONE:
                break
            self.builder.apply(event)
            yield event
        self._thread.join()
        self.session.turns.append(self.builder.turn)

    def stop(self) -> None:
        self.cancel.cancel()

    def record(self) -> dict[str, Any]:
        """The turn as the app's /send endpoint returns it."""
        return {"turn": len(self.session.turns), "backend": self.session.opened.label,
                **self.builder.turn.to_dict()}


def run_once(session: Any, message: str, *, as_json: bool, show: Callable[[Any], None]) -> int:
    """`chat --once`: one turn, printed as it streams or as /send's JSON. Exit 1 when the
    turn ended in an error (a backend that failed mid-turn), else 0."""
    if not message.strip():
        raise UsageError("--once needs a message that is not empty")
    stream = TurnStream(session, message)
    for event in stream.events():
        if not as_json:
            show(event)
    record = stream.record()
    if as_json:
        print(json.dumps(record, ensure_ascii=False))
    else:
        print()
    if record["finish"]["reason"] == "error":
        if as_json:  # the JSON is on stdout; the cause goes where a script's log looks

            print(f"error: {record['finish']['message']}", file=sys.stderr)
        return FAILED
    return 0


def parse_set(session: Any, words: list[str]) -> str:
    """`/set NAME VALUE`: a sampling value (temperature, top_p, ..., max_tokens, seed), or
    max_rounds. Returns what changed; raises ValueError with what is wrong."""
    if len(words) != 2:
        raise ValueError(f"usage: /set NAME VALUE, NAME one of {', '.join(SAMPLING_KEYS)}, max_rounds")
    name, raw = words
    if name == "max_rounds":
        try:
            session.set_options(max_rounds=int(raw))
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return f"max_rounds = {session.chat.config.max_rounds}"
    if name not in SAMPLING_KEYS:
        raise ValueError(f"unknown setting {name!r}; one of {', '.join(SAMPLING_KEYS)}, max_rounds")
    field_type = SamplingParams.__dataclass_fields__[name].type
    try:
        if raw.lower() in ("none", "off") and name == "seed":
            value: Any = None
        elif "int" in str(field_type):
            value = int(raw)
        else:
            value = float(raw)
    except ValueError:
        raise ValueError(f"{name} needs a number, not {raw!r}") from None
    current = session.chat.config.sampling or SamplingParams.defaults()
    session.chat.config.sampling = replace(current, **{name: value})
    return f"{name} = {value}"


def save_session(session: Any, path: str) -> Path:
    target = Path(path).expanduser()
    target.write_text(session.export_json() + "\n", encoding="utf-8")
    return target


def load_session(session: Any, path: str) -> int:
    source = Path(path).expanduser()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{source} is not UTF-8 text") from None
    session.import_json(text)
    return len(session.turns)
