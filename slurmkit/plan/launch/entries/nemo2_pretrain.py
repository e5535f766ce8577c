"""NeMo 2 pretraining in the current Slurm job step: one process per GPU, each running this file.

Builds NeMo's recipe ``nemo.collections.llm.recipes.<recipe>.pretrain_recipe()``, gives its data
and model NeMo's null tokenizer (no download; NVIDIA's scripts/performance/llm/pretrain_*.py do
the same), sets each ``KEY=VALUE`` on the recipe's Config tree (``trainer.max_steps=50`` sets the
``max_steps`` argument of the trainer; a value is a Python literal, else a string) and runs it in
this process with ``nemo_run.run(recipe, direct=True)``. Lightning's Slurm environment gives
each process its rank.

Carried in the run directory by slurmkit; uses only the standard library, ``nemo`` and
``nemo_run``, which the NeMo container ships.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import re
import sys
from typing import Any

_KEY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def parse_value(text: str) -> Any:
    """``50`` -> 50, ``3e-4`` -> 0.0003, ``False``/``None`` -> the constant, ``full`` -> "full"."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def parse_setting(text: str) -> tuple[str, object]:
    """``key=value`` (``++key=value`` is the same: Hydra's spelling of "set, present or not")."""
    key, sep, value = text.removeprefix("++").partition("=")
    if not sep or not _KEY.fullmatch(key):
        raise ValueError(f"{text!r} is not KEY=VALUE with a dotted KEY such as trainer.max_steps=50")
    return key, parse_value(value)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nemo2_pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", required=True, help="module of nemo.collections.llm.recipes, e.g. llama3_8b")
    parser.add_argument("--vocab-size", type=int, required=True,
                        help="the null tokenizer's size; it adds one end-of-document id")
    parser.add_argument("--performance-mode", action="store_true", help="pretrain_recipe(performance_mode=True)")
    parser.add_argument("--dry-run", action="store_true", help="print the configured recipe, train nothing")
    parser.add_argument("settings", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z0-9_]+", args.recipe):
        parser.error(f"--recipe {args.recipe!r}: a module name such as llama3_8b")
    try:
        args.settings = [parse_setting(s) for s in args.settings]
    except ValueError as exc:
        parser.error(str(exc))
    return args


def apply(recipe: Any, key: str, value: Any) -> None:
    """Set ``key`` on the Config tree; a node that is missing or None is an error naming it."""
    *path, leaf = key.split(".")
    node = recipe
    for depth, name in enumerate(path):
        node = getattr(node, name, None)
        if node is None:
            raise SystemExit(f"nemo2_pretrain: {key}: the recipe has no {'.'.join(path[:depth + 1])}")
    try:
        setattr(node, leaf, value)
    except (AttributeError, TypeError, ValueError) as exc:  # fiddle refuses an unknown argument
        raise SystemExit(f"nemo2_pretrain: {key}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import nemo_run as run
    from nemo.collections.nlp.modules.common.tokenizer_utils import get_nmt_tokenizer

    recipes = importlib.import_module(f"nemo.collections.llm.recipes.{args.recipe}")
    recipe = recipes.pretrain_recipe(performance_mode=args.performance_mode)
    tokenizer = run.Config(get_nmt_tokenizer, library="null", model_name="NullTokenizer",
                           vocab_size=args.vocab_size)
    recipe.data.tokenizer = tokenizer
    recipe.model.tokenizer = tokenizer
    for key, value in args.settings:
        apply(recipe, key, value)
    if args.dry_run:
        print(recipe)
        return 0
    run.run(recipe, direct=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
