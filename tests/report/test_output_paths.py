"""Files as users expect (issue 12 point 3), through the CLI: output paths that cannot work are one
line and exit 2 naming the path and the option, before any work; every file written gets the
user's umask; every listing command takes the one --format table|json|csv."""
from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
SMOKE = str(ROOT / "experiments" / "local-smoke.yaml")
LOG = str(ROOT / "tests" / "parse" / "data" / "nemo1-progress-nan-loss-val-ckpt.log")


@pytest.fixture
def blocker(tmp_path) -> Path:
    """An existing file, where a folder is expected."""
    path = tmp_path / "existing.html"
    path.write_text("a report")
    return path


def one_error_line(result: tuple[int, str, str], path: str, option: str) -> str:
    code, _, err = result
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {path}: ") and f"(hint: choose another {option}" in err
    return err


def test_report_to_an_unwritable_place_is_one_line(cli, results_dir):
    err = one_error_line(cli("report", str(results_dir), "-o", "/proc/x.html"), "/proc/x.html", "-o/--out")
    assert "cannot create files in /proc" in err
    err = one_error_line(cli("report", str(results_dir), "--pdf", "/proc/x.pdf"), "/proc/x.pdf", "--pdf")
    assert "cannot create files in /proc" in err


def test_report_under_a_file_is_one_line(cli, results_dir, blocker):
    path = f"{blocker}/x.html"
    err = one_error_line(cli("report", str(results_dir), "-o", path), path, "-o/--out")
    assert f"cannot be created: {blocker} is a file, not a folder" in err
    path = f"{blocker}/x.pdf"
    one_error_line(cli("report", str(results_dir), "--pdf", path), path, "--pdf")


def test_report_onto_a_folder_is_one_line_and_writes_nothing(cli, results_dir, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    err = one_error_line(cli("report", str(results_dir), "-o", str(folder)), str(folder), "-o/--out")
    assert "is a folder, not a file" in err
    html = tmp_path / "r.html"
    one_error_line(cli("report", str(results_dir), "-o", str(html), "--pdf", str(folder)), str(folder), "--pdf")
    assert not html.exists()  # refused before the HTML was written


def test_parse_out_unwritable_or_a_file_is_one_line(cli, blocker):
    err = one_error_line(cli("parse", "--out", "/proc/foo", LOG), "/proc/foo", "--out")
    assert "cannot create files in /proc" in err
    err = one_error_line(cli("parse", "--out", str(blocker), LOG), str(blocker), "--out")
    assert "is a file, not a folder" in err
    assert blocker.read_text() == "a report"


def test_generate_out_onto_a_file_is_one_line(cli, blocker):
    err = one_error_line(cli("generate", SMOKE, "--out", str(blocker)), str(blocker), "--out")
    assert "is a file, not a folder" in err
    one_error_line(cli("generate", SMOKE, "--out", "/proc/run"), "/proc/run", "--out")


@pytest.mark.parametrize("command", [("demo", "--out"), ("prepare-data", "dolly", LOG, "--out"),
                                     ("collect", str(ROOT), "--results")])
def test_other_output_folders_onto_a_file_are_one_line(cli, blocker, command):
    err = one_error_line(cli(*command, str(blocker)), str(blocker), command[-1])
    assert "is a file, not a folder" in err


def files_under(folder: Path) -> list[Path]:
    return [Path(root, name) for root, _, names in os.walk(folder) for name in names]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("umask", "file_mode", "exec_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_every_file_gets_the_users_umask(cli, tmp_path, results_dir, umask, file_mode, exec_mode):
    old = os.umask(umask)
    try:
        assert cli("generate", SMOKE, "--out", str(tmp_path / "run"))[0] == 0
        assert cli("report", str(results_dir), "-o", str(tmp_path / "r.html"), "--pdf", str(tmp_path / "r.pdf"))[0] == 0
        assert cli("parse", "--out", str(tmp_path / "parsed"), LOG)[0] == 0
    finally:
        os.umask(old)
    scripts = list((tmp_path / "run" / "scripts").glob("*.sbatch"))
    assert len(scripts) == 2 and {mode(s) for s in scripts} == {exec_mode}  # scripts keep their exec bit
    assert mode(tmp_path / "run" / "plan.json") == file_mode
    assert [p for p in files_under(tmp_path / "run") if p not in scripts and mode(p) != file_mode] == []
    assert mode(tmp_path / "r.html") == file_mode and mode(tmp_path / "r.pdf") == file_mode
    stored = files_under(tmp_path / "parsed")  # the store's data and log files
    assert stored and [p for p in stored if mode(p) != file_mode] == []


def parsed(out: str, fmt: str) -> list[dict]:
    """The rows of a listing, read back as a program (or a person) would."""
    if fmt == "json":
        return json.loads(out)
    if fmt == "csv":
        return list(csv.DictReader(out.splitlines()))
    head, *rows = out.splitlines()
    names = head.split()
    starts = [head.index(f" {name} ") + 1 if i else 0 for i, name in enumerate(names[:-1])] + [head.rindex(" ") + 1]
    return [{name: row[a:b].strip() for name, a, b in zip(names, starts, [*starts[1:], None])} for row in rows]


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
@pytest.mark.parametrize("command", [("sites", "list"), ("models",), ("generate", SMOKE, "--dry-run")])
def test_listing_commands_share_the_format_option(cli, command, fmt):
    code, out, err = cli(*command, "--format", fmt)
    assert code == 0, err
    rows = parsed(out, fmt)
    if command[0] == "sites":
        site = next(r for r in rows if r["site"] == "xe9680-8cx7")
        assert str(site["gpus/node"]) == "8" and site["adapters"] == "8x ConnectX-7 400G"
    elif command[0] == "models":
        model = next(r for r in rows if r["model"] == "llama2-7b")
        # Meta's Llama 2 7B: 6,738,415,616 parameters (raw for programs, rounded for people)
        assert model["params"] == ("6.74B" if fmt == "table" else 6738415616 if fmt == "json" else "6738415616")
    else:
        runs = rows if fmt != "json" else [{"run_id": r["run_id"], **r["params"]} for r in rows]
        assert len(runs) == 2 and all(r["run_id"].startswith("tiny-gpt-") for r in runs)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_compare_takes_the_same_format_option(cli, results_dir, fmt):
    code, out, err = cli("compare", str(results_dir), "--by", "site", "--format", fmt)
    assert code == 0, err
    if fmt == "json":
        assert json.loads(out)["by"] == "site"
    elif fmt == "csv":
        assert {(r["by"], r["baseline"], r["candidate"]) for r in csv.DictReader(out.splitlines())} == {("site", "A", "B")}
    else:
        assert out.strip()


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_sites_show_prints_valid_json_or_yaml(cli, fmt):
    code, out, err = cli("sites", "show", "xe9680-4cx7", "--format", fmt)
    assert code == 0
    body = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert body["name"] == "xe9680-4cx7" and body["network"]["adapters"]["count"] == 4
    assert err.startswith("site xe9680-4cx7: ") and err.rstrip().endswith("xe9680-4cx7.yaml")
