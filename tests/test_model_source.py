"""The model resolver: every form a user types, every repo layout, every error.

Hub paths run the real huggingface_hub client against tests.hub_standin, a local stand-in of the
Hub's HTTP API on 127.0.0.1 that answers with the Hub's own error codes; the offline paths run
with the client's offline mode and a local cache. Online behaviour is the same code."""

from __future__ import annotations

from pathlib import Path

import pytest

from smol_tools import model_source
from smol_tools.model_source import (DEFAULT_HOMES, OUR_GGUF_REPO, PUBLISHED_HOME, ModelSourceError,
                                     pick_quant_file, pick_quant_files, quants_in, resolve_gguf,
                                     resolve_model)
from tests.hub_standin import HubStandIn, StandInRepo

SHA = "0123456789abcdef0123456789abcdef01234567"
NEW_SHA = "fedcba9876543210fedcba9876543210fedcba98"


# ---- file names, no network ----------------------------------------------------------------------

@pytest.mark.parametrize("files, quant, expected", [
    (["README.md", "smol-tools-4b-32k-q8_0.gguf", "smol-tools-4b-32k-q4_k_m.gguf"], "Q4_K_M",
     ["smol-tools-4b-32k-q4_k_m.gguf"]),
    (["Model.Q4_K_M.gguf", "Model.Q4_K_S.gguf", "Model.Q4_K.gguf"], "q4_k_m", ["Model.Q4_K_M.gguf"]),
    (["Model.Q4_K.gguf", "Model.Q4_K_M.gguf"], "Q4_K", ["Model.Q4_K.gguf"]),
    (["m-Q4_K_M-00002-of-00002.gguf", "m-Q4_K_M-00001-of-00002.gguf", "m-Q8_0.gguf"], "Q4_K_M",
     ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"]),
    (["Q4_K_M/m-Q4_K_M.gguf", "mmproj-m-f16.gguf", "m-F16.gguf"], "F16", ["m-F16.gguf"]),
    (["Q4_K_M/m-Q4_K_M.gguf"], "Q4_K_M", ["Q4_K_M/m-Q4_K_M.gguf"]),
    (["m-UD-Q4_K_XL.gguf", "m-IQ4_XS.gguf"], "iq4_xs", ["m-IQ4_XS.gguf"]),
    (["m-UD-Q4_K_XL.gguf", "m-IQ4_XS.gguf"], "UD-Q4_K_XL", ["m-UD-Q4_K_XL.gguf"]),
])
def test_quant_files_in_any_layout(files: list[str], quant: str, expected: list[str]) -> None:
    assert pick_quant_files(files, quant) == expected
    assert pick_quant_file(files, quant) == expected[0]


def test_missing_quant_lists_the_quants_there() -> None:
    files = ["README.md", "a-q8_0.gguf", "a.Q4_K_M.gguf", "b-Q6_K-00001-of-00002.gguf", "mmproj-f16.gguf"]
    assert quants_in(files) == ["Q4_K_M", "Q6_K", "Q8_0"]
    with pytest.raises(ModelSourceError, match=r"no IQ4_XS GGUF in the repo; quants there: Q4_K_M, Q6_K, Q8_0") as err:
        pick_quant_files(files, "IQ4_XS")
    assert err.value.kind == "no_quant"
    with pytest.raises(ModelSourceError, match="none \\(no GGUF files\\)"):
        pick_quant_files(["README.md"], "Q4_K_M")


def test_incomplete_split_is_an_error_not_half_a_model() -> None:
    with pytest.raises(ModelSourceError, match="incomplete in the repo: missing m-Q4_K_M-00002-of-00003.gguf"):
        pick_quant_files(["m-Q4_K_M-00001-of-00003.gguf", "m-Q4_K_M-00003-of-00003.gguf"], "Q4_K_M")


def test_local_file_folder_and_bad_specs(tmp_path: Path) -> None:
    gguf = tmp_path / "m-Q5_K_M.gguf"
    gguf.write_bytes(b"GGUF")
    resolved = resolve_model(str(gguf))
    assert resolved.path == gguf and resolved.repo is None and resolved.quant == "Q5_K_M"
    assert resolve_gguf(str(gguf)) == gguf
    for missing in (str(tmp_path / "missing.gguf"), "./nope", "~/nope"):
        with pytest.raises(ModelSourceError, match="no GGUF file at") as err:
            resolve_model(missing)
        assert err.value.kind == "missing_file"
    with pytest.raises(ModelSourceError, match="is a folder"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelSourceError, match="neither a GGUF file nor a Hub repo") as err:
        resolve_model("not a model")
    assert err.value.kind == "bad_spec"


# ---- the Hub stand-in --------------------------------------------------------------------------

@pytest.fixture
def hub(monkeypatch, tmp_path: Path):
    from huggingface_hub import constants

    stand_in = HubStandIn().start()
    monkeypatch.setenv("HF_ENDPOINT", stand_in.endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield stand_in
    stand_in.stop()


def _go_offline(monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("files, wanted", [
    ({"smol-tools-4b-32k-q4_k_m.gguf": b"GGUF-q4", "smol-tools-4b-32k-q8_0.gguf": b"GGUF-q8"},
     ["smol-tools-4b-32k-q4_k_m.gguf"]),
    ({"Smol.Q4_K_M.gguf": b"GGUF-q4", "Smol.Q8_0.gguf": b"GGUF-q8"}, ["Smol.Q4_K_M.gguf"]),
    ({"s-Q4_K_M-00001-of-00002.gguf": b"GGUF-p1", "s-Q4_K_M-00002-of-00002.gguf": b"p2", "README.md": b"x"},
     ["s-Q4_K_M-00001-of-00002.gguf", "s-Q4_K_M-00002-of-00002.gguf"]),
    ({"quants/Q4_K_M/s-Q4_K_M.gguf": b"GGUF-q4"}, ["quants/Q4_K_M/s-Q4_K_M.gguf"]),
])
def test_hub_layouts_download_the_right_file_at_one_revision(hub: HubStandIn, files, wanted) -> None:
    hub.repos["someone/model-GGUF"] = StandInRepo(files, SHA)
    resolved = resolve_model("someone/model-GGUF:q4_k_m")
    assert resolved.repo == "someone/model-GGUF" and resolved.revision == SHA and resolved.quant == "Q4_K_M"
    assert list(resolved.files) == wanted
    assert resolved.path.read_bytes() == files[wanted[0]]
    # Every part is on disk beside part 1 (llama.cpp finds the rest there), fetched at the pinned commit.
    for name in wanted:
        assert (resolved.path.parent / Path(name).name).exists()
    assert all(f"/resolve/{SHA}/" in p for p in hub.downloads())
    assert resolved.pinned("Q8_0") == f"someone/model-GGUF:Q8_0@{SHA}"


def test_default_homes_in_order(hub: HubStandIn) -> None:
    assert DEFAULT_HOMES == (OUR_GGUF_REPO, PUBLISHED_HOME)
    # Today: only the model repo, whose card publishes its GGUFs inside it.
    hub.repos[PUBLISHED_HOME] = StandInRepo({"smol-tools-4b-32k-q4_k_m.gguf": b"GGUF-card",
                                             "smol-tools-4b-32k-q8_0.gguf": b"GGUF-card8",
                                             "model.safetensors": b"weights"}, SHA)
    today = resolve_model(None)
    assert today.repo == PUBLISHED_HOME and today.path.read_bytes() == b"GGUF-card"
    assert today.notes and OUR_GGUF_REPO in today.notes[0] and "not found" in today.notes[0]
    assert resolve_model("default:Q8_0").path.read_bytes() == b"GGUF-card8"
    assert resolve_model("", quant="q8_0").quant == "Q8_0"
    # Once our repo is published, it wins, unchanged code.
    hub.repos[OUR_GGUF_REPO] = StandInRepo({"smol-tools-4b-32k-q4_k_m.gguf": b"GGUF-ours"}, NEW_SHA)
    published = resolve_model("default")
    assert published.repo == OUR_GGUF_REPO and published.revision == NEW_SHA and not published.notes
    # A quant only the card's repo has still resolves there.
    assert resolve_model("default:Q8_0").repo == PUBLISHED_HOME


def test_repo_not_found_names_what_to_do(hub: HubStandIn) -> None:
    with pytest.raises(ModelSourceError, match="repository nobody/nothing not found.*hf auth login") as err:
        resolve_model("nobody/nothing:Q4_K_M")
    assert err.value.kind == "not_found"
    with pytest.raises(ModelSourceError, match="no home of the model has Q4_K_M") as err:
        resolve_model("default")
    assert err.value.kind == "not_found" and OUR_GGUF_REPO in str(err.value) and PUBLISHED_HOME in str(err.value)


def test_quant_not_in_repo_lists_the_quants(hub: HubStandIn) -> None:
    hub.repos["a/b"] = StandInRepo({"b-q8_0.gguf": b"GGUF", "b-q6_k.gguf": b"GGUF"}, SHA)
    with pytest.raises(ModelSourceError, match="no Q4_K_M GGUF in the repo; quants there: Q6_K, Q8_0") as err:
        resolve_model("a/b")
    assert err.value.kind == "no_quant" and not hub.downloads()


def test_gated_and_private_repos_say_log_in(hub: HubStandIn, monkeypatch) -> None:
    hub.repos["org/gated"] = StandInRepo({"g-q4_k_m.gguf": b"GGUF"}, SHA, gated=True)
    with pytest.raises(ModelSourceError, match="gated: accept its conditions at https://huggingface.co/org/gated "
                                               "and log in") as err:
        resolve_model("org/gated:Q4_K_M")
    assert err.value.kind == "auth"
    hub.repos["org/private"] = StandInRepo({"p-q4_k_m.gguf": b"GGUF-private"}, SHA, private_token="hf_right")
    with pytest.raises(ModelSourceError, match="if it is private, log in") as err:
        resolve_model("org/private:Q4_K_M")
    monkeypatch.setenv("HF_TOKEN", "hf_right")
    assert resolve_model("org/private:Q4_K_M").path.read_bytes() == b"GGUF-private"


def test_revision_pin_and_unknown_revision(hub: HubStandIn) -> None:
    hub.repos["a/b"] = StandInRepo({"b-q8_0.gguf": b"GGUF8", "b-q4_k_m.gguf": b"GGUF4"}, SHA)
    first = resolve_model("a/b:Q4_K_M")
    again = resolve_model(first.pinned("Q8_0"))
    assert again.revision == SHA and again.path.read_bytes() == b"GGUF8"
    with pytest.raises(ModelSourceError, match="no such revision") as err:
        resolve_model(f"a/b:Q8_0@{NEW_SHA}")
    assert err.value.kind == "not_found"


def test_hub_down_or_unreachable_without_cache(hub: HubStandIn, monkeypatch) -> None:
    hub.repos[PUBLISHED_HOME] = StandInRepo({"smol-tools-4b-32k-q4_k_m.gguf": b"GGUF"}, SHA)
    hub.down = True
    with pytest.raises(ModelSourceError, match="could not be reached.*no copy is in the local cache") as err:
        resolve_model(f"{PUBLISHED_HOME}:Q4_K_M")
    assert err.value.kind == "unreachable"
    with pytest.raises(ModelSourceError, match="unreachable or offline mode is on") as err:
        resolve_model("default")
    assert err.value.kind == "unreachable"
    hub.stop()  # nothing listens any more: connection refused
    with pytest.raises(ModelSourceError) as err:
        resolve_model(f"{PUBLISHED_HOME}:Q4_K_M")
    assert err.value.kind == "unreachable"


def test_offline_uses_the_cache_and_only_the_cache(hub: HubStandIn, monkeypatch) -> None:
    hub.repos[PUBLISHED_HOME] = StandInRepo({"smol-tools-4b-32k-q4_k_m.gguf": b"GGUF-card"}, SHA)
    online = resolve_model("default")
    _go_offline(monkeypatch)
    before = len(hub.requests)
    offline = resolve_model("default")
    assert offline.from_cache and offline.path == online.path and offline.revision == SHA
    assert offline.repo == PUBLISHED_HOME and len(hub.requests) == before  # no request at all
    with pytest.raises(ModelSourceError, match="offline mode is on") as err:
        resolve_model("default:Q8_0")  # never downloaded
    assert err.value.kind == "unreachable"
    with pytest.raises(ModelSourceError, match="offline mode is on") as err:
        resolve_model("other/repo:Q4_K_M")
    assert err.value.kind == "unreachable"


def test_hub_down_falls_back_to_the_cache(hub: HubStandIn) -> None:
    hub.repos["a/b"] = StandInRepo({"b-q4_k_m.gguf": b"GGUF4"}, SHA)
    first = resolve_model("a/b")
    hub.down = True
    again = resolve_model("a/b")
    assert again.from_cache and again.path == first.path


def test_default_spec_is_what_entry_points_use() -> None:
    # `chat`, `eval` and the app all default to the resolver's homes, never to one repo name.
    from smol_tools.app.config import AppConfig
    from smol_tools.cli_chat import ChatOptions, chat_config, model_spec

    # `chat` with no --model and no SMOL_TOOLS_MODEL loads what the app loads.
    assert model_spec(chat_config(ChatOptions(), env={})) == f"{model_source.DEFAULT}:Q4_K_M"
    assert AppConfig.from_env({}).model_spec() == f"{model_source.DEFAULT}:Q4_K_M"
    assert AppConfig.from_env({"SMOL_TOOLS_QUANT": "q8_0"}).model_spec() == f"{model_source.DEFAULT}:Q8_0"


def test_space_preload_names_a_file_of_a_default_home() -> None:
    # A Space built from this README downloads at build time the very file the app resolves.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    front = readme.split("---\n")[1]
    preload = front.split("preload_from_hub:\n")[1].splitlines()[0].strip().removeprefix("- ").split()
    repo, filename = preload
    assert repo == PUBLISHED_HOME and repo in DEFAULT_HOMES
    assert pick_quant_file([filename, "smol-tools-4b-32k-q8_0.gguf"], model_source.DEFAULT_QUANT) == filename


def test_a_session_switching_quant_stays_on_the_revision_it_resolved() -> None:
    from types import SimpleNamespace

    from smol_tools.app.backend_choice import BackendChoice
    from smol_tools.app.service import DemoService

    opened = SimpleNamespace(details={"repo": PUBLISHED_HOME, "revision": SHA},
                             choice=BackendChoice("llama-cpp-python", "default:Q4_K_M"))
    session = SimpleNamespace(opened=opened)
    for asked in ("default:Q8_0", f"{PUBLISHED_HOME}:Q8_0"):
        pinned = DemoService._pinned(session, BackendChoice("llama-cpp-python", asked))
        assert pinned.model == f"{PUBLISHED_HOME}:Q8_0@{SHA}"
    other = DemoService._pinned(session, BackendChoice("llama-cpp-python", "someone/else:Q8_0"))
    assert other.model == "someone/else:Q8_0"
    server = DemoService._pinned(session, BackendChoice("openai", "default"))
    assert server.model == "default"
