"""The `package` subcommand: arguments in, `run_package` called, exit status out.

Wire it into the CLI with `add_package_parser(sub)`; `python -m smol_tools.pipeline.cli_args`
(and packaging/build_quants.py) run the same command standalone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .drift import TEMPLATE_CHOICES

if TYPE_CHECKING:
    from .package import PackageOptions


def _quant_list(text: str) -> tuple[str, ...]:
    quants = tuple(q.strip().upper() for q in text.split(",") if q.strip())
    if not quants:
        raise argparse.ArgumentTypeError("give at least one quant type, e.g. Q4_K_M")
    return quants


def options_from_args(args: argparse.Namespace) -> "PackageOptions":
    from .package import PackageOptions  # start-up time: the CLI loads only what the chosen subcommand runs
    from .settings import load_config  # start-up time: the CLI loads only what the chosen subcommand runs

    config = load_config()
    opts = PackageOptions(
        source=args.source or config.source, out=args.out or Path("out"),
        config=config, quants=args.quants, imatrix=args.imatrix, template=args.template,
        repo_id=args.repo_id, publish=args.publish, resume=args.resume, revision=args.revision,
        model_name=args.model_name, declare_pre=args.declare_pre, f16=args.f16,
        expect_turns=args.expect_turns, imatrix_chunks=args.imatrix_chunks,
        imatrix_from=args.imatrix_from.upper(), threads=args.threads,
        verify_threads=args.verify_threads, llama_bin=args.llama_bin, drop_source=args.drop_source,
        check_memory=not args.no_memory_check, eval_suite=args.eval, eval_limit=args.eval_limit,
        from_gguf=args.from_gguf, base_model=args.base_model)
    if args.out is None:  # named after the model the SOURCE is (provenance.default_model_name)
        opts.out = Path("out") / f"{opts.name}-GGUF"
    return opts


def cmd_package(args: argparse.Namespace) -> int:
    """Exit status: 0 all files verified, 1 some file failed (not published), 2 refused."""
    from .convert import ConversionError  # start-up time: the CLI loads only what the chosen subcommand runs
    from .drift import TemplateDriftError  # start-up time: the CLI loads only what the chosen subcommand runs
    from .imatrix import ImatrixError  # start-up time: the CLI loads only what the chosen subcommand runs
    from ..llamacpp.build import LlamaCppBuildError  # start-up time: the CLI loads only what the chosen subcommand runs
    from .metadata import MetadataError  # start-up time: the CLI loads only what the chosen subcommand runs
    from .package import PackageError  # start-up time: the CLI loads only what the chosen subcommand runs
    from .run import run_package  # start-up time: the CLI loads only what the chosen subcommand runs

    try:
        result = run_package(options_from_args(args))
    except (TemplateDriftError, PackageError, ConversionError, ImatrixError, MetadataError,
            LlamaCppBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if result.failed else 0


def add_package_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "package", help="checkpoint -> verified GGUF quants, model card, Modelfiles (-> Hub)",
        description="Convert a Hugging Face checkpoint to GGUF, quantize it, verify every file and "
                    "write the Hub repo contents. Defaults come from smol_tools/pipeline/data/config.toml.")
    p.add_argument("source", nargs="?", default=None,
                   help="Hub repo id or local checkpoint folder (default: the config's source)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: out/<name>-GGUF)")
    p.add_argument("--quants", type=_quant_list, default=None,
                   help="comma-separated types (default: Q8_0,Q6_K,Q5_K_M,Q4_K_M,IQ4_XS)")
    p.add_argument("--imatrix", default="auto", metavar="auto|off|FILE",
                   help="compute from the packaged calibration set (auto), skip (off), or use FILE")
    p.add_argument("--imatrix-chunks", type=int, default=None, metavar="N",
                   help="cap the calibration chunks llama-imatrix processes (default: all)")
    p.add_argument("--imatrix-from", choices=("bf16", "q8_0"), default="bf16",
                   help="model the imatrix is computed with: bf16 (default) or q8_0 (several times "
                        "faster on CPU; needs Q8_0 in --quants)")
    p.add_argument("--template", choices=TEMPLATE_CHOICES, default=None,
                   help="which chat template to embed when the checkpoint's differs from ours")
    p.add_argument("--from-gguf", action="store_true",
                   help="SOURCE holds GGUFs someone else built (Hub repo or folder): download them, "
                        "retemplate them (metadata only), verify, and write the card, Modelfiles and "
                        "Hub files; --quants picks some (default: every quant found)")
    p.add_argument("--repo-id", default=None, metavar="OWNER/NAME",
                   help="Hub repo to publish to (default: the config's for its model, else "
                        "<owner>/<model name>-GGUF)")
    p.add_argument("--base-model", default=None, metavar="OWNER/NAME",
                   help="Hub repo of the checkpoint in a local SOURCE folder: the card's base_model "
                        "and links (required with --publish for a local folder; a Hub SOURCE is "
                        "its own)")
    p.add_argument("--publish", action="store_true", help="upload (default: print the upload plan)")
    p.add_argument("--resume", action="store_true", help="keep finished artifacts, redo the rest")
    p.add_argument("--revision", default=None, help="Hub branch, tag or commit (default: main)")
    p.add_argument("--model-name", default=None,
                   help="file/model name (default: the SOURCE repo's name, or the config's for its source)")
    p.add_argument("--declare-pre", default=None, metavar="NAME",
                   help="pre-tokenizer name for a tokenizer llama.cpp's converter does not know")
    p.add_argument("--f16", action="store_true", help="also convert to F16")
    p.add_argument("--expect-turns", type=Path, default=None, metavar="FILE",
                   help="scripted conversations every file must reproduce greedily (test models)")
    p.add_argument("--threads", type=int, default=None, help="threads for llama.cpp programs")
    p.add_argument("--verify-threads", type=int, default=None, help="threads for verification")
    p.add_argument("--llama-bin", type=Path, default=None, metavar="DIR",
                   help="folder with your own llama-quantize and llama-imatrix (e.g. a CUDA build)")
    p.add_argument("--drop-source", action="store_true",
                   help="delete the downloaded weights once converted (saves disk)")
    p.add_argument("--eval", default=None, metavar="default|tiny|SUITE.json",
                   help="score every verified file on an eval suite for the card's Eval column "
                        "(default = smol_tools/eval/suite.json; off unless given: hours on CPU for the 4B model)")
    p.add_argument("--eval-limit", type=int, default=None, metavar="N",
                   help="with --eval, only the suite's first N cases")
    p.add_argument("--no-memory-check", action="store_true",
                   help="skip loading a file in llama.cpp to check the memory table")
    p.set_defaults(func=cmd_package)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smol-tools")
    add_package_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["package", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
