"""The one local stand-in of the Hugging Face Hub's HTTP API on 127.0.0.1, for everything that
downloads from the Hub (the model resolver, `package` from a Hub SOURCE, `doctor` on a remote
GGUF). Point huggingface_hub at it with HF_ENDPOINT and the real client runs unchanged, in this
process or a child.

Several repos, each a dict of repo path -> bytes at one commit, served the way the real Hub
answers the calls `HfApi.model_info`, `hf_hub_download` and `snapshot_download` make:
`/api/models/<repo>` (and `/revision/<rev>`, `/tree/<rev>`), HEAD/GET
`/<repo>/resolve/<rev>/<path>` with `Range` (a resumed download, a header read). Errors carry
the Hub's own `X-Error-Code` headers, so huggingface_hub raises its real exception types:
- a repo that does not exist, or a private one asked without the right token: 401 RepoNotFound
  (the real Hub does not tell the two apart to an anonymous caller);
- a gated repo: metadata is public, file downloads answer 401 GatedRepo;
- an unknown revision: 404 RevisionNotFound (unless the repo takes `any_revision`);
- `down = True`: every request answers 503 (the Hub having a bad day).
`stall(name, after)` makes the next GET of `name` send `after` bytes and wait until `release()`:
a download caught mid-file. Every request is recorded in `requests` as (method, path, Range).
tests/local_hub.py's LocalHub is this server holding one repo read from a folder.
(A helper module, not a test module.)"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class StandInRepo:
    files: dict[str, bytes]
    sha: str = "a" * 40  # the commit `main` points to
    gated: bool = False
    private_token: str | None = None  # private: only this bearer token may see it
    any_revision: bool = False  # every commit holds these files (a build pinned to an older one)
    push_after_lookup: str | None = None  # `main` moves here after the first revision lookup

    def revision(self, asked: str) -> str | None:
        """The commit `asked` names, or None when this repo has no such revision."""
        if asked == "main":
            return self.sha
        return asked if self.any_revision or asked == self.sha else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-body breaks the connection: expected


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HubStandIn:
    def __init__(self, repos: dict[str, StandInRepo] | None = None, down: bool = False) -> None:
        self.repos: dict[str, StandInRepo] = dict(repos or {})
        self.down = down
        self.requests: list[tuple[str, str, str | None]] = []
        self._stall: tuple[str, int] | None = None
        self.stalled, self._release = threading.Event(), threading.Event()
        self._server: _Server | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def downloads(self) -> list[str]:
        return [p for m, p, _ in self.requests if m == "GET" and "/resolve/" in p]

    def gets(self, name: str) -> list[str | None]:
        """The Range header of every GET of file `name` so far (None: the whole file)."""
        return [r for m, p, r in self.requests if m == "GET" and "/resolve/" in p and p.rsplit("/", 1)[-1] == name]

    def stall(self, name: str, after: int) -> None:
        self._stall = (name, after)

    def release(self) -> None:
        self._release.set()

    def start(self) -> "HubStandIn":
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "HubStandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _handler(hub: HubStandIn) -> type[BaseHTTPRequestHandler]:
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
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if hub.down:
                return self._error(503, "ServiceUnavailable", "down for maintenance")
            api = path.startswith("/api/models/")
            parts = (path[len("/api/models"):] if api else path).strip("/").split("/")
            repo_id, rest = ("/".join(parts[:2]), "/".join(parts[2:])) if len(parts) >= 2 else ("", "")
            repo = hub.repos.get(repo_id)
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            if repo is None or (repo.private_token is not None and token != repo.private_token):
                return self._error(401, "RepoNotFound", "Repository not found")
            if api:
                return self._api(repo_id, repo, rest)
            if not rest.startswith("resolve/"):
                return self._error(404, "EntryNotFound", "not found")
            asked, _, name = rest[len("resolve/"):].partition("/")
            sha = repo.revision(asked)
            if sha is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            if repo.gated and not token:
                return self._error(401, "GatedRepo", "Access to this model is restricted")
            if name not in repo.files:
                return self._error(404, "EntryNotFound", "Entry not found")
            self._file(sha, name, repo.files[name], body)

        def _api(self, repo_id: str, repo: StandInRepo, rest: str) -> None:
            kind, _, asked = rest.partition("/")
            sha = repo.revision(asked.split("/")[0] if kind in ("revision", "tree") else "main")
            if sha is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            if kind == "tree":
                return self._json([{"type": "file", "path": n, "size": len(data), "oid": _etag(data)[:40]}
                                   for n, data in repo.files.items()])
            if kind == "revision" and repo.push_after_lookup:  # someone pushed while the build ran
                repo.sha, repo.push_after_lookup = repo.push_after_lookup, None
            self._json({"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private_token is not None,
                        "gated": repo.gated, "siblings": [{"rfilename": n} for n in repo.files]})

        def _file(self, sha: str, name: str, data: bytes, body: bool) -> None:
            start, end, last = 0, len(data), ""  # end: exclusive
            wanted = self.headers.get("Range")
            if body and wanted and wanted.startswith("bytes="):
                # "bytes=N-" (a resumed download) or "bytes=N-M" (a header read), as the Hub serves them
                first, _, last = wanted[len("bytes="):].partition("-")
                start = int(first)
                end = min(int(last) + 1, len(data)) if last else end
            ranged = start > 0 or bool(last)
            self.send_response(206 if ranged else 200)
            self.send_header("X-Repo-Commit", sha)
            self.send_header("ETag", f'"{_etag(data)}"')
            self.send_header("Content-Length", str(end - start))
            if ranged:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.end_headers()
            if not body:
                return
            stall, hub._stall = (hub._stall, None) if hub._stall and hub._stall[0] == name else (None, hub._stall)
            if stall is not None:
                self.wfile.write(data[start:stall[1]])
                self.wfile.flush()
                hub.stalled.set()
                hub._release.wait(600)
                start = stall[1]
            self.wfile.write(data[start:end])

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

    return Handler
