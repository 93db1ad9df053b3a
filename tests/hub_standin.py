"""A local stand-in of the Hugging Face Hub's HTTP API on 127.0.0.1, for the model resolver.

Several repos, each a dict of repo path -> bytes at one commit, served the way the real Hub
answers the calls `HfApi.model_info` and `hf_hub_download` make: `/api/models/<repo>` (and
`/revision/<rev>`), HEAD/GET `/<repo>/resolve/<rev>/<path>`. Errors carry the Hub's own
`X-Error-Code` headers, so huggingface_hub raises its real exception types:
- a repo that does not exist, or a private one asked without the right token: 401 RepoNotFound
  (the real Hub does not tell the two apart to an anonymous caller);
- a gated repo: metadata is public, file downloads answer 401 GatedRepo;
- an unknown revision: 404 RevisionNotFound;
- `down = True`: every request answers 503 (the Hub having a bad day).
Point huggingface_hub at it with HF_ENDPOINT (our resolver reads it per call).
(A helper module, not a test module.)"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class StandInRepo:
    files: dict[str, bytes]
    sha: str = "a" * 40
    gated: bool = False
    private_token: str | None = None  # private: only this bearer token may see it


@dataclass
class HubStandIn:
    repos: dict[str, StandInRepo] = field(default_factory=dict)
    down: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def downloads(self) -> list[str]:
        return [p for m, p in self.requests if m == "GET" and "/resolve/" in p]

    def _find(self, path: str) -> tuple[str | None, str]:
        """(repo id, rest of the path) for the longest known or unknown owner/name prefix."""
        parts = path.strip("/").split("/")
        if len(parts) < 2:
            return None, ""
        return f"{parts[0]}/{parts[1]}", "/".join(parts[2:])

    def start(self) -> "HubStandIn":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((self.command, path))
                if hub.down:
                    return self._error(503, "ServiceUnavailable", "down for maintenance")
                api = path.startswith("/api/models/")
                repo_id, rest = hub._find(path[len("/api/models"):] if api else path)
                repo = hub.repos.get(repo_id or "")
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                if repo is None or (repo.private_token is not None and token != repo.private_token):
                    return self._error(401, "RepoNotFound", "Repository not found")
                if api:
                    revision = rest.removeprefix("revision/") if rest.startswith("revision/") else "main"
                    if revision not in ("main", repo.sha):
                        return self._error(404, "RevisionNotFound", "Invalid rev id")
                    return self._json({"id": repo_id, "modelId": repo_id, "sha": repo.sha,
                                       "private": repo.private_token is not None, "gated": repo.gated,
                                       "siblings": [{"rfilename": n} for n in repo.files]})
                if not rest.startswith("resolve/"):
                    return self._error(404, "EntryNotFound", "not found")
                revision, _, name = rest[len("resolve/"):].partition("/")
                if revision not in ("main", repo.sha):
                    return self._error(404, "RevisionNotFound", "Invalid rev id")
                if repo.gated and not token:
                    return self._error(401, "GatedRepo", "Access to this model is restricted")
                if name not in repo.files:
                    return self._error(404, "EntryNotFound", "Entry not found")
                data = repo.files[name]
                self.send_response(200)
                self.send_header("X-Repo-Commit", repo.sha)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, status: int, code: str, message: str) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _json(self, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "HubStandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
