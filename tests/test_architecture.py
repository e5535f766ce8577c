"""docs/architecture.md's module map is the code's: each module in the half pyproject's
import-linter contracts give it, and the arrows between groups exactly the imports between them."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "slurmkit"


def diagram() -> tuple[dict[str, str], set[tuple[str, str]], dict[str, set[str]]]:
    """(top-level module -> group, arrows between top-level groups, folder -> its modules) of the
    Mermaid block. A subgraph inside a group is a folder of slurmkit/ and holds that folder's modules."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    [block] = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    stack: list[str] = []
    groups: dict[str, str] = {}
    arrows: set[tuple[str, str]] = set()
    folders: dict[str, set[str]] = {}
    for line in block.splitlines()[1:]:
        line = line.strip()
        if match := re.fullmatch(r"subgraph (\w+)\[.*\]", line):
            stack.append(match.group(1))
            if len(stack) == 2:
                groups[match.group(1)] = stack[0]
                folders[match.group(1)] = set()
        elif line == "end":
            stack.pop()
        elif match := re.fullmatch(r"(\w+) --> (\w+)", line):
            arrows.add((match.group(1), match.group(2)))
        elif match := re.fullmatch(r"(\w+)(\[\"(\w+)\"\])?", line):
            name = match.group(3) or match.group(1)
            if len(stack) == 2:
                folders[stack[1]].add(name)
            else:
                groups[name] = stack[0]
    return groups, arrows, folders


def contract_groups() -> dict[str, str]:
    """module -> control | data | shared | cli, from pyproject's import-linter contracts."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    by_name = {c["name"]: c for c in contracts}
    first = by_name["The control half does not import the data half"]
    groups = {m: "control" for m in first["source_modules"]}
    groups |= {m: "data" for m in first["forbidden_modules"]}
    groups |= {m: "shared" for m in by_name["The shared low modules import neither half"]["source_modules"]}
    groups["slurmkit.cli"] = groups["slurmkit.demo"] = "cli"  # the composers
    return {m.removeprefix("slurmkit."): g for m, g in groups.items()}


def top_level_modules() -> set[str]:
    names = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    return names - {"__init__", "__main__"}


def folder_modules(folder: str) -> set[str]:
    path = PACKAGE / folder
    names = {p.stem for p in path.glob("*.py")} | {p.name for p in path.iterdir() if (p / "__init__.py").is_file()}
    return names - {"__init__", "__main__"}


def code_arrows(groups: dict[str, str], package: Path = PACKAGE) -> set[tuple[str, str]]:
    """Imports between groups, including those inside functions (lazy imports count)."""
    arrows = set()
    for path in package.rglob("*.py"):
        if path.parent == package and path.name in ("__init__.py", "__main__.py"):
            continue  # the package root (empty) and the entry point, which only runs the CLI
        source = groups[path.relative_to(package).parts[0].removesuffix(".py")]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if isinstance(node, ast.ImportFrom) and node.module == "slurmkit":
                names = [f"slurmkit.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "slurmkit" and len(parts) > 1 and groups.get(parts[1], source) != source:
                    arrows.add((source, groups[parts[1]]))
    return arrows


def test_every_module_is_on_the_map_in_its_half():
    drawn, _, _ = diagram()
    expected = contract_groups()
    assert set(drawn) == top_level_modules() == set(expected)
    assert drawn == expected


def test_every_folder_drawn_holds_its_modules():
    _, _, folders = diagram()
    assert folders, "the map draws no folder"
    for folder, modules in folders.items():
        assert modules == folder_modules(folder), folder


def test_the_arrows_are_the_imports_between_groups():
    _, arrows, _ = diagram()
    assert arrows == code_arrows(contract_groups())


def test_the_map_can_fail(tmp_path):
    # a data module importing the control half would be an arrow the map does not draw
    fake = tmp_path / "slurmkit"
    (fake / "results").mkdir(parents=True)
    (fake / "results" / "metrics.py").write_text("def f():\n    from slurmkit.plan.make import make_plan\n")
    assert code_arrows(contract_groups(), fake) == {("data", "control")}
