"""`smol-tools doctor owner/repo:QUANT` reads only the header's bytes from the Hub (issue 13 §2).

The Hub is tests.local_hub.LocalHub, a stand-in of the Hub's HTTP API on 127.0.0.1 that the real
huggingface_hub client talks to (HF_ENDPOINT) and that records the Range header of every GET.
The GGUF served is the tiny model re-labelled with Qwen3.5's stock template (3.2 MB, a 29 KB
header), so doctor's findings are the interesting "different template" ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smol_tools import gguf_remote
from smol_tools.cli import main
from smol_tools.gguf_doctor import diagnose
from smol_tools.gguf_header import read_header
from tests.fixtures.foreign_gguf import ensure_foreign_gguf
from tests.local_hub import LocalHub

REPO = "someone/smol-tools-4b-32k"
COMMIT = "c" * 40
NAME = "smol-tools-4b-32k.Q8_0.gguf"
SPEC = f"{REPO}:Q8_0@main"  # the stand-in answers model_info at a revision


@pytest.fixture(scope="module")
def stock_gguf(tiny_model) -> Path:
    return ensure_foreign_gguf("qwen35-stock")


@pytest.fixture
def hub(stock_gguf, tmp_path, monkeypatch):
    from huggingface_hub import constants

    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / NAME).write_bytes(stock_gguf.read_bytes())
    parts = [f"smol-tools-4b-32k-Q4_K_M-0000{i}-of-00002.gguf" for i in (1, 2)]
    (folder / parts[0]).write_bytes(stock_gguf.read_bytes())  # a split set: part 1 holds the header
    (folder / parts[1]).write_bytes(b"GGUF" + bytes(1 << 20))
    (folder / "README.md").write_text("# a card\n")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with LocalHub(folder, REPO, COMMIT) as served:
        monkeypatch.setenv("HF_ENDPOINT", served.endpoint)
        yield served


def _fetched(ranges: list[str | None]) -> int:
    total = 0
    for wanted in ranges:
        assert wanted is not None and wanted.startswith("bytes="), f"a GET without a Range: {wanted}"
        first, _, last = wanted[len("bytes="):].partition("-")
        assert last, f"an open-ended range fetches the rest of the file: {wanted}"
        total += int(last) + 1 - int(first)
    return total


def _findings(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "path"}


def test_doctor_reads_only_the_header_and_finds_what_the_local_file_shows(hub, stock_gguf, tmp_path,
                                                                           capsys) -> None:
    size = stock_gguf.stat().st_size
    capsys.readouterr()
    assert main(["doctor", SPEC, "--json"]) == 1
    out = capsys.readouterr()
    remote = json.loads(out.out)
    local = diagnose(tmp_path / "repo" / NAME, fix_target=SPEC).to_dict()  # the file the stand-in serves
    assert _findings(remote) == _findings(local)
    assert remote["template"]["status"] == "different" and remote["template"]["differences"]
    assert remote["path"] == f"{REPO}@{COMMIT}/{NAME}"
    assert f"smol-tools retemplate {SPEC} " in remote["fix"]
    fetched = _fetched(hub.gets(NAME))
    assert len(hub.gets(NAME)) == 1 and fetched <= gguf_remote.FIRST_RANGE < size / 2
    assert "read the header only" in out.err and "1 range request" in out.err
    assert not any(Path(hub_cache()).rglob("*.gguf")), "doctor downloaded the file"


def hub_cache() -> str:
    import os

    return os.environ["HF_HUB_CACHE"]


def test_a_header_past_the_first_range_is_read_in_growing_ranges(hub, stock_gguf) -> None:
    header_size = read_header(stock_gguf).tensor_info_end
    source = gguf_remote.header_for(SPEC, first_range=1024)
    assert source.requests >= 3 and source.remote
    ranges = hub.gets(NAME)
    assert len(ranges) == source.requests and _fetched(ranges) == source.fetched
    # Each request fetches only bytes not held yet, and the total stays within one growth step.
    starts = [int(r[len("bytes="):].partition("-")[0]) for r in ranges]
    assert starts == sorted(set(starts)) and starts[0] == 0
    assert header_size <= source.fetched < gguf_remote.GROWTH * header_size
    local = read_header(stock_gguf)
    assert source.header.file_size == stock_gguf.stat().st_size  # the real size, from Content-Range
    assert source.header.tensors == local.tensors and source.header.data_start == local.data_start
    assert {k: r.value for k, r in source.header.records.items()} == {k: r.value for k, r in local.records.items()}
    assert diagnose(source.path, header=source.header).to_dict() | {"path": None, "fix": None} == \
        diagnose(stock_gguf).to_dict() | {"path": None, "fix": None}


def test_a_split_file_is_judged_on_part_one_alone(hub, stock_gguf, capsys) -> None:
    capsys.readouterr()
    assert main(["doctor", f"{REPO}:Q4_K_M@main", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["template"]["status"] == "different"
    assert hub.gets("smol-tools-4b-32k-Q4_K_M-00002-of-00002.gguf") == []
    assert _fetched(hub.gets("smol-tools-4b-32k-Q4_K_M-00001-of-00002.gguf")) < stock_gguf.stat().st_size / 2


def test_download_keeps_the_whole_file_and_a_cached_file_is_read_from_disk(hub, stock_gguf, capsys) -> None:
    capsys.readouterr()
    assert main(["doctor", SPEC, "--download", "--json"]) == 1
    downloaded = json.loads(capsys.readouterr().out)
    assert hub.gets(NAME) == [None]  # one whole-file GET, as hf_hub_download makes it
    assert Path(downloaded["path"]).is_file() and Path(downloaded["path"]).name == NAME
    assert main(["doctor", SPEC, "--json"]) == 1
    cached = json.loads(capsys.readouterr().out)
    assert hub.gets(NAME) == [None]  # nothing fetched again: the cached copy was read
    assert cached == downloaded


def test_a_truncated_remote_file_is_a_clear_error(hub, stock_gguf, capsys) -> None:
    header = read_header(stock_gguf)
    hub.files[NAME] = stock_gguf.read_bytes()[: header.tensor_info_end - 10]
    capsys.readouterr()
    assert main(["doctor", SPEC]) == 2
    assert "truncated" in capsys.readouterr().err
