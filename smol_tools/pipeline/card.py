"""The Hub model card (README.md): YAML front matter, verified file table, usage, memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..compat import runs_on_markdown
from .artifacts import FileReport
from .modelfile import HUB_OLLAMA_FILES, OLLAMA_MODEL, OLLAMA_REQUIRES
from .progress import human_size


@dataclass(frozen=True)
class CardInput:
    model_name: str
    repo_id: str
    base_model: str | None  # the checkpoint these files quantize (Hub id); None: not known
    license: str
    pipeline_tag: str
    tags: Sequence[str]
    quantized_by: str
    files: Sequence[FileReport]  # only verified, published files
    default_quant: str
    source: dict[str, Any]  # fetch manifest: kind, repo_id, revision
    template_choice: str  # "ours" or "checkpoint"
    drift_summary: str
    has_mtp: bool
    mtp_note: str | None = None
    imatrix_file: str | None = None
    imatrix_note: str = ""
    memory_markdown: str = ""
    memory_check: str | None = None
    measured_markdown: str = ""  # measured.py: the real-size run's table, when this model has its shape
    ollama_files: Sequence[str] = ()  # the Ollama files written and uploaded (Modelfile.*, template, params)
    context_length: int = 32768  # the checkpoint's (num_ctx, -c, n_ctx in the usage lines)
    turns_checked: bool = False  # every file reproduced a scripted set of turns greedily
    eval_scores: dict[str, str] = field(default_factory=dict)  # file -> score (`--eval`)
    eval_note: str = ""  # which suite, how many cases, how scored


def front_matter(ci: CardInput) -> str:
    from huggingface_hub import ModelCardData  # start-up time: huggingface_hub

    # No base_model at all rather than a guessed one (a local checkpoint without --base-model).
    data = ModelCardData(base_model=ci.base_model,
                         base_model_relation="quantized" if ci.base_model else None,
                         pipeline_tag=ci.pipeline_tag, license=ci.license, tags=list(ci.tags),
                         quantized_by=ci.quantized_by)
    return f"---\n{data.to_yaml()}\n---\n"


def _file_table(ci: CardInput) -> str:
    evals = bool(ci.eval_scores)
    head = ["File", "Type", "Size", "Bits/weight", "SHA256", "Verified"] + (["Eval"] if evals else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in ci.files:
        kind = f.kind + (" (imatrix)" if f.imatrix else "")
        row = [f"[`{f.name}`](https://huggingface.co/{ci.repo_id}/blob/main/{f.name})", kind,
               human_size(f.size), f"{f.bits_per_weight:.2f}" if f.bits_per_weight else "-",
               f"`{f.sha256}`", "yes" if f.verified else "no"]
        if evals:
            row.append(ci.eval_scores.get(f.name, "-"))
        lines.append("| " + " | ".join(row) + " |")
    notes = [f"- `{f.name}`: llama.cpp used other types for {len(f.fallbacks)} tensor(s) whose rows "
             f"do not fit the {f.kind} block size ({'; '.join(f.fallbacks[:3])}"
             f"{'; ...' if len(f.fallbacks) > 3 else ''})." for f in ci.files if f.fallbacks]
    return "\n".join(lines + ([""] + notes if notes else []))


def _source_line(source: dict[str, Any], base_model: str | None) -> str:
    if source.get("from_gguf"):
        where = (f"[{source['repo_id']}](https://huggingface.co/{source['repo_id']}) at commit "
                 f"`{source['revision']}`" if source.get("kind") == "hub" else "a local folder")
        return (f"Not converted here: these are the GGUF files published in {where}, with their "
                "tensors copied unchanged and only the metadata rewritten (smol-tools chat "
                "template, stop tokens, sampling defaults).")
    if source.get("kind") == "hub":
        return (f"Converted from [{source['repo_id']}](https://huggingface.co/{source['repo_id']}) "
                f"at commit `{source['revision']}`.")
    if base_model:
        return ("Converted from a local copy of that checkpoint (named with `--base-model`; its "
                "revision was not recorded).")
    return "Converted from a local checkpoint."


def _model_line(ci: CardInput) -> str:
    what = (f"[{ci.base_model}](https://huggingface.co/{ci.base_model})" if ci.base_model
            else "a local checkpoint whose Hub repo was not given (`--base-model`)")
    names = ", ".join(f"`{f.kind}`" for f in ci.files)
    made = ("checked and retemplated" if ci.source.get("from_gguf")
            else "made with llama.cpp's converter and quantizer")
    return (f"GGUF quantizations of {what}, a 4B tool-calling model with a "
            f"{ci.context_length:,}-token context, {made} by the smol-tools packaging pipeline. "
            f"{_source_line(ci.source, ci.base_model)} "
            f"Available: {names}.")


def _ollama_section(ci: CardInput, quant: str) -> list[str]:
    hub_files = [name for name in HUB_OLLAMA_FILES if name in ci.ollama_files]
    modelfile = f"Modelfile.{quant}"
    lines = ["```bash", f"ollama run hf.co/{ci.repo_id}:{quant}", "```", ""]
    if hub_files:
        listed = " and ".join(f"`{name}`" for name in hub_files)
        lines.append(f"This repo carries the Ollama files {listed}, so the command above uses the "
                     "smol-tools format, stop tokens and sampling defaults.")
    else:
        lines.append("This repo carries no Ollama template or params file: Ollama picks a template "
                     "by matching the embedded one, which may not be the smol-tools format.")
    if modelfile in ci.ollama_files:
        lines[-1] += (f" With a downloaded file: `ollama create {OLLAMA_MODEL} -f {modelfile}` next "
                      "to it.")
    lines[-1] += f" Needs Ollama {OLLAMA_REQUIRES} or newer."
    return lines + [""]


def render_card(ci: CardInput) -> str:
    q = ci.default_quant
    pattern = f"*{q.lower()}.gguf"
    ctx = ci.context_length
    verified_by = ("loads in llama-cpp-python; its embedded chat template renders the smol-tools "
                   "render corpus byte-identically to `templates/smol-tools.jinja`; `<|im_end|>` and "
                   "`<|endoftext|>` are end-of-generation tokens; "
                   + ("greedy decoding reproduces every scripted tool-call turn exactly"
                      if ci.turns_checked else "a greedy generation from a tool prompt runs"))
    sections = [
        front_matter(ci),
        f"# {ci.model_name} GGUF",
        "",
        _model_line(ci),
        "",
        "Every file carries the chat template the model was fine-tuned on in "
        "`tokenizer.chat_template`, so `llama-server --jinja`, LM Studio and llama-cpp-python "
        f"format tool calls correctly with no flags. Template: {ci.template_choice} "
        f"({ci.drift_summary})."
        + (" The Ollama files below use the smol-tools format, which differs from this embedded "
           "template." if ci.template_choice == "checkpoint" and "differs" in ci.drift_summary else ""),
        "",
        "## Files",
        "",
        _file_table(ci),
        "",
        f"Verified means: {verified_by}.",
    ]
    if ci.eval_scores and ci.eval_note:
        sections += ["", f"Eval: {ci.eval_note}"]
    if ci.imatrix_file:
        sections += ["", f"`{ci.imatrix_file}` is the importance matrix used for the types marked "
                         f"(imatrix). {ci.imatrix_note}".rstrip()]
    sections += [
        "",
        "## Runs on",
        "",
        "The oldest versions that load this architecture (`qwen35`); older ones stop at "
        "\"unknown model architecture\":",
        "",
        runs_on_markdown(),
        "",
        "## Usage",
        "",
        "### llama.cpp",
        "",
        "```bash",
        f"llama-server -hf {ci.repo_id}:{q} --jinja -c {ctx}",
        "```",
        "",
        "`--jinja` uses the embedded template; tool calls come back parsed in the OpenAI format.",
        "",
        "### Ollama",
        "",
        *_ollama_section(ci, q),

        "### llama-cpp-python",
        "",
        "```python",
        "from llama_cpp import Llama",
        "",
        f'llm = Llama.from_pretrained(repo_id="{ci.repo_id}", filename="{pattern}", n_ctx={ctx})',
        "tools = [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\",",
        "          \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}]",
        "reply = llm.create_chat_completion(",
        "    messages=[{\"role\": \"user\", \"content\": \"What is the weather in Paris?\"}], tools=tools)",
        "print(reply[\"choices\"][0][\"message\"][\"content\"])  # <tool_call>{...}</tool_call>",
        "```",
        "",
        "The chat formatter reads the embedded template; `smol-tools parse` (or "
        "`smol_tools.toolcalls.parse_output`) turns the text into tool calls.",
        "",
        "## Memory",
        "",
        ci.memory_markdown or "(not computed)",
    ]
    if ci.memory_check:
        sections += ["", ci.memory_check]
    if ci.measured_markdown:
        sections += ["", "### Measured", "", ci.measured_markdown]
    sections += ["", "## Multi-token prediction", "",
                 ci.mtp_note or ("The checkpoint carries MTP tensors; they are kept in every file "
                                 "(`llama-server --spec-type draft-mtp`)." if ci.has_mtp else
                                 "The checkpoint has no MTP tensors, so these files have none.")]
    return "\n".join(sections) + "\n"
