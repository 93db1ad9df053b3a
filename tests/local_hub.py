"""A stand-in for the Hugging Face Hub's HTTP API, as far as `snapshot_download` uses it, served
from a local folder on 127.0.0.1: revision lookup (`model_info`), the tree listing, and HEAD/GET
on `/resolve/` (with Range). Point `HF_ENDPOINT` at it and the real huggingface_hub client runs
unchanged in any process, so a build can be killed in the middle of a real download.

Unlike tests.test_package_units.FakeHub (which replaces the client functions in-process), this
exercises huggingface_hub's own temporary-file handling, which is what a killed download leaves.
(A helper module, not a test module: its name does not start with test_.)"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-body breaks the connection: expected


class LocalHub:
    """One model repo whose every commit holds the files of `folder`.

    `main` is the commit the `main` branch points to; `push_after_lookup` moves it after the
    first lookup (someone pushed while the build ran). `stall(name, after)` makes the next GET
    of `name` send `after` bytes and then wait until `release()`: a download caught mid-file.
    Every request is recorded in `requests` as (method, path, Range header)."""

    def __init__(self, folder: Path, repo_id: str, main: str, push_after_lookup: str | None = None) -> None:
        self.files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        self.repo_id, self.main, self.push_after_lookup = repo_id, main, push_after_lookup
        self.requests: list[tuple[str, str, str | None]] = []
        self._stall: tuple[str, int] | None = None
        self.stalled, self._release = threading.Event(), threading.Event()
        self._server: _Server | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stall(self, name: str, after: int) -> None:
        self._stall = (name, after)

    def release(self) -> None:
        self._release.set()

    def gets(self, name: str) -> list[str | None]:
        """The Range header of every GET of file `name` so far (None: the whole file)."""
        return [r for m, p, r in self.requests if m == "GET" and "/resolve/" in p and p.rsplit("/", 1)[-1] == name]

    def _etag(self, name: str) -> str:
        return hashlib.sha256(self.files[name]).hexdigest()

    def start(self) -> "LocalHub":
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
                hub.requests.append((self.command, path, self.headers.get("Range")))
                api = f"/api/models/{hub.repo_id}/"
                resolve = f"/{hub.repo_id}/resolve/"
                if path.startswith(api + "revision/"):
                    revision = path[len(api + "revision/"):]
                    sha = hub.main if revision == "main" else revision
                    if hub.push_after_lookup:
                        hub.main, hub.push_after_lookup = hub.push_after_lookup, None
                    self._json({"id": hub.repo_id, "modelId": hub.repo_id, "sha": sha, "private": False,
                                "siblings": [{"rfilename": n} for n in hub.files]})
                elif path.startswith(api + "tree/"):
                    self._json([{"type": "file", "path": n, "size": len(data), "oid": hub._etag(n)[:40]}
                                for n, data in hub.files.items()])
                elif path.startswith(resolve):
                    sha, _, name = path[len(resolve):].partition("/")
                    if name not in hub.files:
                        self._json({"error": "Entry not found"}, status=404)
                        return
                    self._file(sha, name, body)
                else:
                    self._json({"error": "not found"}, status=404)

            def _file(self, sha: str, name: str, body: bool) -> None:
                data = hub.files[name]
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
                self.send_header("ETag", f'"{hub._etag(name)}"')
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

            def _json(self, payload: Any, status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
