"""Wording and help layout shared by every subcommand, so the same option reads the same
everywhere (`--url` in chat and eval) and every option shows its default."""

from __future__ import annotations

import argparse

URL_HELP = ("server URL for --backend openai, llama-server or ollama (empty: the backend's usual "
            "local address, http://127.0.0.1:8080 or Ollama's http://127.0.0.1:11434)")
DEFAULT_URLS = {"openai": "http://127.0.0.1:8080", "llama-server": "http://127.0.0.1:8080",
                "ollama": "http://127.0.0.1:11434"}


class HelpFormatter(argparse.HelpFormatter):
    """Every option shows its default, unless its help already says it or there is none to say."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.help is argparse.SUPPRESS or "default" in text:
            return action.help
        if action.default in (None, False, "", argparse.SUPPRESS) or not action.option_strings:
            return action.help
        return f"{text} (default: %(default)s)".strip()


def apply_formatter(parser: argparse.ArgumentParser) -> None:
    """Use HelpFormatter on `parser` and every subcommand under it (added by any module)."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                apply_formatter(child)
