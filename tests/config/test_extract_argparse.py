"""scripts/programs/extract_argparse.py: what it reads from a source equals what argparse builds
when that source runs, and the rebuilt parser (slurmkit.plan.launch.flagparser) refuses what it refuses."""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slurmkit.plan.launch.flagparser import FlagError, parse_flags
from slurmkit.plan.launch.programs import FlagSet

ROOT = Path(__file__).parents[2]
_spec = importlib.util.spec_from_file_location("extract_argparse", ROOT / "scripts/programs/extract_argparse.py")
ex = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ex  # dataclasses look their module up while the file runs
_spec.loader.exec_module(ex)

# Shaped like Megatron-LM's arguments.py: an entry function calling group builders, one builder
# it never calls, and the argparse forms real programs use.
SOURCE = textwrap.dedent('''
    import argparse

    def parse_args(extra=None):
        parser = argparse.ArgumentParser(description="demo", allow_abbrev=False)
        parser = _add_model_args(parser)
        parser = _add_data_args(parser)
        if extra is not None:
            parser = extra(parser)
        return parser

    def _add_model_args(parser):
        group = parser.add_argument_group(title="model")
        group.add_argument("--num-layers", type=int, default=None)
        group.add_argument("--lr", type=float, default=3e-4)
        group.add_argument("--split", type=str, default="969, 30, 1")
        group.add_argument("--scale", type=float, default=2 ** 32)
        group.add_argument("--fp8-format", default=None, choices=["e4m3", "hybrid"], dest="fp8")
        group.add_argument("--timing-log-level", type=int, default=0, choices=range(0, 3))
        group.add_argument("--disable-bias-linear", action="store_false", dest="add_bias_linear")
        group.add_argument("--swiglu", action="store_true")
        group.add_argument("--mode", action="store_const", const="fast")
        group.add_argument("--overlap", action=argparse.BooleanOptionalAction, default=True)
        group.add_argument("--nproc-per-node", "--nproc_per_node", type=str, default="1")
        return parser

    def _add_data_args(parser):
        group = parser.add_argument_group(title="data")
        group.add_argument("--data-path", nargs="*", default=None)
        group.add_argument("--ranks", nargs="+", type=int)
        group.add_argument("--rest", nargs=argparse.REMAINDER)
        return parser

    def _never_called(parser):
        parser.add_argument("--ghost", action="store_true")
''')


def _real_parser() -> argparse.ArgumentParser:
    namespace: dict = {}
    exec(compile(SOURCE, "demo.py", "exec"), namespace)  # noqa: S102 (our own test source)
    return namespace["parse_args"]()


def _action_name(action: argparse.Action) -> str | None:
    names = {argparse._StoreTrueAction: "store_true", argparse._StoreFalseAction: "store_false",
             argparse._StoreConstAction: "store_const", argparse._StoreAction: None}
    return names.get(type(action), type(action).__name__)


def test_extraction_equals_the_parser_the_source_builds():
    found = ex.extract(SOURCE, "demo.py", entry="parse_args")
    real = {o: a for a in _real_parser()._actions for o in a.option_strings if o not in ("-h", "--help")}
    assert set(found.flags) == set(real)
    assert "--ghost" not in found.flags  # declared in a function parse_args never calls
    assert found.allow_abbrev is False
    for option, action in real.items():
        spec = found.flags[option]
        if isinstance(action, argparse.BooleanOptionalAction):
            assert spec["action"] == ("store_false" if option.startswith("--no-") else "store_true")
            continue
        assert spec["action"] == _action_name(action), option
        assert spec["dest"] == action.dest, option
        assert spec["choices"] == (list(action.choices) if action.choices is not None else None), option
        assert spec["type"] == getattr(action.type, "__name__", action.type), option
        if spec["action"] is None:
            assert spec["nargs"] == action.nargs, option
    assert found.flags["--mode"]["const"] == "fast"
    assert found.warnings == [("demo.py:9: extra(parser) may add flags this extractor does not read;"
                               " check that code (and extract it too if it does)")]


def test_whole_file_without_entry_and_problems_reported():
    found = ex.extract(SOURCE, "demo.py")
    assert "--ghost" in found.flags
    odd = ex.extract('p.add_argument("--x", choices=list(Kinds))\np.add_argument(NAME)\n', "odd.py")
    assert odd.flags["--x"]["unresolved"] == {"choices": "list(Kinds)"}
    assert len(odd.warnings) == 2 and odd.warnings[0].startswith("odd.py:1: --x")
    with pytest.raises(ex.ExtractError, match="--x is declared twice"):
        ex.extract('p.add_argument("--x")\np.add_argument("--x")\n', "dup.py")
    with pytest.raises(ex.ExtractError, match="no function 'main'"):
        ex.extract(SOURCE, "demo.py", entry="main")


def test_flag_set_from_a_git_tag_round_trips(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "args.py").write_text(SOURCE)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "args.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    (repo / "args.py").write_text("")  # the working tree is not what is read: the tag is
    data, warnings = ex.flag_set(repo, "owner/demo", "v1", [("args.py", "parse_args")], "demo")
    assert data["warnings"] == warnings and len(warnings) == 1  # the provider parse_args may call
    assert data["version"] == "v1" and data["allow_abbrev"] is False
    assert data["sources"][0]["path"] == "args.py" and len(data["sources"][0]["commit"]) == 40
    text = ex.dump_flag_set(data)
    assert json.loads(text) == data and text == ex.dump_flag_set(json.loads(text))
    assert all(line.startswith('    "--') for line in text.splitlines() if '"dest"' in line)


def _flag_set() -> FlagSet:
    found = ex.extract(SOURCE, "demo.py", entry="parse_args")
    return FlagSet("demo", "demo", "v1", (), flags=found.flags)


def test_rebuilt_parser_accepts_what_the_program_accepts():
    argv = ["--num-layers", "32", "--lr", "3e-4", "--fp8-format", "hybrid", "--timing-log-level", "2",
            "--disable-bias-linear", "--swiglu", "--mode", "--no-overlap", "--nproc_per_node", "8",
            "--data-path", "1.0", "/a b", "--ranks", "1", "2"]
    parsed = parse_flags(_flag_set(), argv)
    real = _real_parser().parse_args(argv)
    for dest in ("num_layers", "lr", "fp8", "timing_log_level", "add_bias_linear", "swiglu", "mode",
                 "data_path", "ranks"):
        assert getattr(parsed, dest) == getattr(real, dest), dest
    assert parsed.overlap is False


def test_rebuilt_parser_has_the_programs_literal_defaults():
    real = vars(_real_parser().parse_args([]))
    assert real["scale"] == 2 ** 32 and _flag_set().flags["--scale"]["default_expr"] == "2 ** 32"
    real["scale"] = None  # computed in code: kept as text, not evaluated
    assert vars(parse_flags(_flag_set(), [])) == real


@pytest.mark.parametrize("argv, message", [
    (["--ghost"], "unrecognized arguments: --ghost"),
    (["--num-layer", "3"], "unrecognized arguments: --num-layer"),  # no abbreviations
    (["--fp8-format", "e5m2"], "invalid choice: 'e5m2'"),
    (["--timing-log-level", "3"], "invalid choice: 3"),
    (["--num-layers", "3.5"], "invalid int value: '3.5'"),
    (["--lr", "fast"], "invalid float value: 'fast'"),
    (["--num-layers"], "expected one argument"),
    (["--ranks"], "expected at least one argument"),
    (["--swiglu", "yes"], "unrecognized arguments: yes"),
])
def test_rebuilt_parser_refuses_what_the_program_refuses(argv, message):
    with pytest.raises(FlagError, match=message.replace("(", r"\(")):
        parse_flags(_flag_set(), argv)
    with pytest.raises(SystemExit):  # the program's own parser refuses the same line
        _real_parser().parse_args(argv)
