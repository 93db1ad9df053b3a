"""The model card's measured hardware table, read from the real-size results file.

`python -m bench --real-size` (bench/real_size/) measures a random-weight stand-in with the real
model's shape on a real machine and writes bench/reference/real-size.json. A card gets that table
only when the files it describes have the same architecture shape (layers, attention and
recurrent sizes: what memory and speed depend on besides the quant), so a tiny test model's card
never borrows the 4B model's figures. An installed package without the repository has no results
file and prints no table. Nothing here estimates: absent figures print as "-".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from .memory import ModelShape, read_shape

REFERENCE = Path(__file__).resolve().parents[2] / "bench" / "reference" / "real-size.json"


def shape_key(path: Path) -> str:
    """What a measurement transfers across: the architecture's sizes and parameter count (MTP layers
    left out: a build may drop them), not the weights' values or quant types."""
    from gguf import GGUFReader  # start-up time: gguf imports numpy

    shape: ModelShape = read_shape(path)
    mtp = tuple(f"blk.{i}." for i in shape.mtp_layers)
    params = sum(int(t.n_elements) for t in GGUFReader(path).tensors if not (mtp and t.name.startswith(mtp)))
    return (f"{shape.arch} layers={shape.n_layer - len(shape.mtp_layers)} "
            f"full={','.join(map(str, shape.full_layers))} kv={','.join(map(str, sorted(set(shape.n_head_kv))))} "
            f"k={shape.key_length} v={shape.value_length} inner={shape.inner_size} state={shape.state_size} "
            f"groups={shape.group_count} conv={shape.conv_kernel} params={params}")


def context_full_rss(row: dict[str, Any]) -> float | None:
    """MiB resident with the context full: the in-process fill, else the session that filled it."""
    return (row.get("in_process") or {}).get("rss_after_fill_mib") or (row.get("context_full") or {}).get("rss_mib")


def load_results(path: Path = REFERENCE) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _num(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _gib(mib: Any) -> str:
    return "-" if mib is None else f"{mib / 1024:.2f} GiB"


def measured_markdown(results: dict[str, Any]) -> str:
    """One row per quant and context: memory (measured next to computed) and tokens/s per runtime."""
    runtimes = results.get("runtimes") or {}
    if not runtimes:
        return ""
    machine = results.get("machine") or {}
    head = ["File", "Context", "Load s", "RSS after load", "RSS after a turn", "RSS, context full", "Computed total",
            "llama-bench pp / tg", "in process pp / tg", "llama-server pp / tg", "app tg", "Roofline tg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for quant, entry in runtimes.items():
        bench = entry.get("llama_bench") or {}
        roof = (entry.get("roofline") or {}).get("roofline_tokens_per_s")
        for ctx, row in (entry.get("contexts") or {}).items():
            ip, srv, app = row.get("in_process") or {}, row.get("llama_server") or {}, row.get("app") or {}
            lines.append("| " + " | ".join([
                f"`{entry.get('file', quant)}`", f"{int(ctx) // 1024}K", _num(ip.get("load_s"), 2),
                _gib(ip.get("rss_after_load_mib")), _gib(ip.get("rss_after_turn_mib")),
                _gib(context_full_rss(row)),
                _gib(row.get("computed_total_mib")),
                f"{_num(bench.get('pp_tokens_per_s'))} / {_num(bench.get('tg_tokens_per_s'), 2)}",
                f"{_num(ip.get('pp_tokens_per_s'))} / {_num(ip.get('tg_tokens_per_s'), 2)}",
                f"{_num(srv.get('pp_tokens_per_s'))} / {_num(srv.get('tg_tokens_per_s'), 2)}",
                _num(app.get("tg_tokens_per_s"), 2), _num(roof, 2)]) + " |")
    if len(lines) == 2:  # no quant reached a measured context: nothing to print
        return ""
    plan = results.get("plan") or {}
    cpu = machine.get("cpu") or "unknown CPU"
    lines += ["", f"Measured {str(results.get('date', ''))[:10]} on {cpu} ({machine.get('cores')} cores, "
                  f"{(machine.get('memory_bytes') or 0) / 2**30:.0f} GiB), {plan.get('threads')} threads, "
                  f"with a random-weight stand-in of this model's shape ({_commands(results)}). "
                  f"pp: tokens/s on a {plan.get('prompt_tokens')}-token prompt; tg: tokens/s decoding "
                  f"{plan.get('gen_tokens')} tokens. RSS: resident memory of a fresh process (weights memory-mapped, "
                  "or read in where llama.cpp repacks most of them, as for Q4_K_M on x86). Computed total: the "
                  "memory table above. Roofline: the "
                  "decode rate this machine's measured read bandwidth allows (weights read once per token). "
                  "'-': not measured."]
    session = session_sentence(results)
    if session:
        lines.append(session)
    missing = results.get("not_measured") or []
    if missing:
        lines.append(f"Not measured in this run: {'; '.join(str(m).split(':')[0] for m in missing)}.")
    return "\n".join(lines)


def session_sentence(results: dict[str, Any]) -> str:
    """The long agent session in one sentence: what the last round evaluated and cost against the
    first rounds ("" when no session was measured)."""
    session = results.get("session") or {}
    rounds = session.get("rounds") or []
    if len(rounds) < 2:
        return ""
    first, second, last = rounds[0], rounds[1], rounds[-1]
    return (f"A {len(rounds)}-round tool session in process (`{session.get('file')}`, scripted turns forced) grew "
            f"to {last['prompt_tokens']:,} prompt tokens: round {last['round']} evaluated "
            f"{last['prompt_tokens_evaluated']:,} new prompt tokens in {last['seconds']:.0f} s, round 2 "
            f"{second['prompt_tokens_evaluated']:,} in {second['seconds']:.0f} s, round 1 "
            f"{first['prompt_tokens_evaluated']:,} in {first['seconds']:.0f} s (the whole prompt each time "
            f"would be {last['prompt_tokens'] / max(second['prompt_tokens'], 1):.0f}× round 2's); "
            f"{session.get('full_reevaluations', 0)} full re-evaluations.")


def _commands(results: dict[str, Any]) -> str:
    commands = results.get("commands") or ["python -m bench --real-size"]
    more = f" and {len(commands) - 1} more run(s), merged with `--merge`" if len(commands) > 1 else ""
    return f"`{commands[-1]}`{more}"


def measured_section(folder: Path, file_names: Sequence[str], path: Path = REFERENCE) -> str:
    """The measured table for a build whose GGUFs (in `folder`) have the measured shape, else ""."""
    results = load_results(path)
    if not results or not results.get("shape_key"):
        return ""
    for name in file_names:
        if name.endswith(".gguf") and (Path(folder) / name).exists():
            if shape_key(Path(folder) / name) == results["shape_key"]:
                return measured_markdown(results)
            return ""
    return ""


def headline(results: dict[str, Any], quant: str = "Q4_K_M") -> str:
    """The README's one-line summary of `quant`, from the measured figures only ("" when none)."""
    entry = (results.get("runtimes") or {}).get(quant) or {}
    rows = entry.get("contexts") or {}
    if not rows:
        return ""
    smallest, largest = rows[min(rows, key=int)], rows[max(rows, key=int)]
    ip = smallest.get("in_process") or {}
    bench = entry.get("llama_bench") or {}
    full = context_full_rss(largest)
    machine = results.get("machine") or {}
    parts = [f"{quant} on {(results.get('plan') or {}).get('threads')} threads ({machine.get('cpu') or 'CPU'}):"]
    if ip.get("tg_tokens_per_s"):
        parts.append(f"decodes {ip['tg_tokens_per_s']:.1f} tokens/s in process"
                     + (f" (llama-bench {bench['tg_tokens_per_s']:.1f})" if bench.get("tg_tokens_per_s") else "")
                     + (f", reads a prompt at {ip['pp_tokens_per_s']:.0f} tokens/s" if ip.get("pp_tokens_per_s") else ""))
    if ip.get("rss_after_turn_mib"):
        parts.append(f"{ip['rss_after_turn_mib'] / 1024:.1f} GiB resident at {int(min(rows, key=int)) // 1024}K context")
    top = int(max(rows, key=int)) // 1024
    if full:
        held = (largest.get("context_full") or {}).get("tokens") or (largest.get("in_process") or {}).get("fill_tokens")
        filled = f"{held / 1000:.0f}K of {top}K" if held and held < 0.95 * top * 1024 else f"{top}K"
        parts.append(f"{full / 1024:.1f} GiB with {filled} context filled")
    elif len(rows) > 1 and (largest.get("in_process") or {}).get("rss_after_turn_mib"):  # llama.cpp allocates the cache up front
        parts.append(f"{largest['in_process']['rss_after_turn_mib'] / 1024:.1f} GiB at {top}K")
    rounds = (results.get("session") or {}).get("rounds") or []
    if len(rounds) > 1 and (results.get("session") or {}).get("file") == entry.get("file"):
        last = rounds[-1]
        parts.append(f"in a {len(rounds)}-round tool session grown to {last['prompt_tokens'] / 1000:.0f}K tokens, "
                     f"round {last['round']} reads only its {last['prompt_tokens_evaluated']:,} new tokens "
                     f"({last['seconds']:.0f} s)")
    return " ".join(parts[:1]) + " " + "; ".join(parts[1:]) + f" (measured {str(results.get('date', ''))[:10]})."
