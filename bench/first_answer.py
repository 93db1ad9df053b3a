"""Time from `bash scripts/demo.sh` to the first answer (issue 14): docs/demo.md's table.

    python -m bench.first_answer CLONE VENV CACHE PORT     # e.g. a fresh clone, empty folders

Starts `bash scripts/demo.sh` in CLONE with SMOL_TOOLS_VENV=VENV, SMOL_TOOLS_CACHE=CACHE and the
Hub offline (so the app runs the tiny model shipped in the package), polls
/gradio_api/info until the server answers, asks "What is the weather in Paris?" through `/send`
(gradio_client) and prints one JSON line: seconds to the server and to the answer, the load
average, the answer. Set PIP_NO_CACHE_DIR=1 as well for a cold pip. Not part of `python -m bench`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    clone, venv, cache, port = (argv or sys.argv[1:])[:4]
    env = {**os.environ, "SMOL_TOOLS_VENV": venv, "SMOL_TOOLS_CACHE": cache, "HF_HUB_OFFLINE": "1",
           "GRADIO_SERVER_PORT": port}
    log = Path(cache).parent / f"demo-{port}.log"
    started = time.monotonic()
    with log.open("wb") as out:
        demo = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=clone, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                if demo.poll() is not None:
                    print(json.dumps({"error": f"demo.sh exited {demo.returncode}; see {log}"}))
                    return 1
                try:
                    with urllib.request.urlopen(f"{url}/gradio_api/info", timeout=2):
                        break
                except OSError:
                    time.sleep(0.5)
            up = time.monotonic() - started
            from gradio_client import Client  # start-up time: imported once the server is up

            turn = json.loads(Client(url, verbose=False).predict("What is the weather in Paris?", api_name="/send"))
            first = time.monotonic() - started
        finally:
            os.killpg(demo.pid, signal.SIGTERM)
            demo.wait(timeout=60)
    print(json.dumps({"server_up_s": round(up, 1), "first_answer_s": round(first, 1),
                      "load_average": os.getloadavg(), "answer": turn.get("answer", "")[:200], "log": str(log)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
