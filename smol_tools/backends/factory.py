"""Build a backend from a user's choice: in-process GGUF, OpenAI-compatible server, llama-server
fed token prompts, or Ollama."""

from __future__ import annotations

from typing import Literal

from ..model_source import resolve_gguf
from .base import Backend

BackendKind = Literal["llama-cpp-python", "openai", "llama-server", "ollama", "llama-server-managed"]
BACKEND_KINDS: tuple[str, ...] = ("llama-cpp-python", "openai", "llama-server", "ollama", "llama-server-managed")


def make_backend(kind: BackendKind, *, model: str = "", url: str = "", n_ctx: int | None = None,
                 api_key: str | None = None, n_threads: int | None = None) -> Backend:
    """`model` is a GGUF path or `owner/repo:QUANT` in process, else the server's model name."""
    if kind == "llama-cpp-python":
        from .llama_cpp import LlamaCppBackend  # start-up time: backends.llama_cpp pulls in numpy

        return LlamaCppBackend(resolve_gguf(model), n_ctx=n_ctx, n_threads=n_threads)
    if kind == "openai":
        from .openai_compat import OpenAICompatBackend  # start-up time: backends.openai_compat pulls in httpx, openai

        return OpenAICompatBackend(url or "http://127.0.0.1:8080", model or "default", api_key=api_key,
                                   context_length=n_ctx)
    if kind == "llama-server":
        # start-up time: backends.llama_server_tokens pulls in httpx
        from .llama_server_tokens import LlamaServerTokensBackend

        return LlamaServerTokensBackend(url or "http://127.0.0.1:8080", context_length=n_ctx)
    if kind == "ollama":
        from .ollama import OllamaBackend  # start-up time: backends.ollama pulls in httpx, ollama

        return OllamaBackend(url or "http://127.0.0.1:11434", model or "smol-tools", context_length=n_ctx)
    if kind == "llama-server-managed":  # our llama-server with parallel slots, started on first use
        from .managed_server import ManagedLlamaServerBackend  # start-up time: backends.managed_server pulls in httpx

        return ManagedLlamaServerBackend(resolve_gguf(model), context_length=n_ctx, threads=n_threads)
    raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKEND_KINDS)}")
