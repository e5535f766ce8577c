"""The config commands through the real entry point: exact text, exit codes, files."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SMOKE = str(ROOT / "experiments" / "local-smoke.yaml")


def test_generate_writes_and_regenerates_nothing(cli, tmp_path):
    code, out, err = cli("generate", SMOKE, "--out", str(tmp_path / "run"))
    assert code == 0
    assert out.splitlines()[0].split() == ["run_id", "site", "nodes", "gpus", "tp/pp/dp", "gbs", "parallel", "mem_gib"]
    assert len(out.splitlines()) == 3
    # two scripts, plan.json and the trainer both scripts run; then the site file read
    assert err.splitlines() == [f"wrote 4 files, 0 unchanged, in {tmp_path / 'run'}",
                                f"site local: {ROOT / 'site-configs' / 'local.yaml'}"]
    code, out, err = cli("generate", SMOKE, "--out", str(tmp_path / "run"))
    assert err.splitlines()[0] == f"wrote 0 files, 4 unchanged, in {tmp_path / 'run'}"


def test_generate_dry_run_writes_nothing(cli, tmp_path):
    code, out, err = cli("generate", SMOKE, "--out", str(tmp_path / "run"), "--dry-run", "--format", "json")
    assert code == 0 and not (tmp_path / "run").exists()
    assert [j["params"]["site"] for j in json.loads(out)] == ["local", "local"]


def test_generate_error_is_one_line_per_problem_exit_2(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    frozen = Path(__file__).parent / "data" / "sites" / "local-frozen.yaml"
    bad.write_text((Path(__file__).parent / "data" / "golden" / "torchrun-local.yaml").read_text()
                   .replace("../sites/local-frozen.yaml", str(frozen))
                   .replace("nodes: 2", "nodes: 9").replace("gbs: 16", "gbs: 15"))
    code, out, err = cli("generate", str(bad), "--out", str(tmp_path / "run"))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: {bad}:7:8: nodes=9 is more than site local-frozen has (4) (hint: use at most 4 nodes on local-frozen)",
        f"error: {bad}:12:6: gbs=15 is not divisible by mbs*dp = 2*18 = 36 (hint: use a multiple of 36)",
    ]
    assert not (tmp_path / "run").exists()


def test_generate_site_override(cli, tmp_path):
    code, out, _ = cli("generate", str(ROOT / "experiments" / "llama2-7b-pretrain.yaml"),
                       "--site", "xe8640", "--dry-run")
    assert code == 0 and "xe9680" not in out and out.count("xe8640") == 8


def test_validate_files_and_site_names(cli):
    code, out, _ = cli("validate", SMOKE, "local", str(ROOT / "site-configs" / "xe8640.yaml"))
    assert code == 0
    assert out.splitlines() == [f"ok: {SMOKE} (2 jobs)", "ok: local (site)",
                                f"ok: {ROOT / 'site-configs' / 'xe8640.yaml'} (site)"]


def test_validate_reports_problems_of_every_file(cli, tmp_path):
    site = tmp_path / "s.yaml"
    site.write_text("schema_version: 1\nname: s\nscheduler: {partition: p}\n")
    exp = tmp_path / "e.yaml"
    exp.write_text("schema_version: 2\n")
    code, out, err = cli("validate", str(site), str(exp))
    assert code == 2
    assert err.splitlines() == [
        f"error: {site}:1:1: nodes: required key is missing",
        f"error: {site}:1:1: gpu: required key is missing",
        f"error: {site}:1:1: network: required key is missing",
        f"error: {exp}:1:17: schema_version: Input should be 1",
        f"error: {exp}:1:1: name: required key is missing",
        f"error: {exp}:1:1: sites: required key is missing",
    ]


def test_malformed_and_python_tag(cli, tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text("schema_version: 1\nname: !!python/object/apply:os.system [id]\n")
    code, _, err = cli("validate", str(exp))
    assert code == 2
    assert err == f"error: {exp}:2:7: YAML tag !!python/object/apply:os.system is not allowed (hint: slurmkit reads plain YAML only; remove the tag)\n"


def test_sites_list_and_show(cli):
    code, out, _ = cli("sites", "list")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert {"local", "xe9680-8cx7", "xe9680-4cx7", "xe8640", "r760xa-h100pcie", "r760xa-l40s"} <= set(rows)
    assert "8x ConnectX-7 400G" in rows["xe9680-8cx7"] and "4x ConnectX-7 400G" in rows["xe9680-4cx7"]
    code, out, err = cli("sites", "show", "xe9680-4cx7")
    body = json.loads(out)  # the whole of stdout; the file it came from goes to stderr
    assert err.startswith("site xe9680-4cx7: ") and err.endswith("site-configs/xe9680-4cx7.yaml\n")
    assert body["network"]["adapters"]["count"] == 4


def test_models_table(cli):
    code, out, _ = cli("models")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["llama2-7b"][1] == "6.74B" and rows["llama2-70b"][1] == "68.98B"
    assert rows["llama2-13b"][1] == "13.02B" and "tiny-gpt" in rows


@pytest.mark.parametrize("kind", ["site", "experiment", "models"])
def test_schema_is_json(cli, kind):
    code, out, _ = cli("schema", kind)
    body = json.loads(out)
    assert code == 0 and body["type"] == "object" and body["additionalProperties"] is False


def test_help_and_generate_import_no_heavy_modules(tmp_path):
    script = (
        "import sys\n"
        "from slurmkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        # `--help` loads no command, so not the config models either (pydantic, ~50 ms)
        "print('HELP', 'pydantic' in sys.modules)\n"
        f"main(['generate', {SMOKE!r}, '--out', {str(tmp_path / 'run')!r}])\n"
        "heavy = sorted(m for m in ('pandas', 'pyarrow', 'matplotlib', 'torch') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "HELP False" in out.stdout and "HEAVY []" in out.stdout
    assert (tmp_path / "run" / "plan.json").is_file()


def test_strict_turns_warnings_into_errors(cli, tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text(Path(SMOKE).read_text().replace("seq_len: 64", "seq_len: 512"))
    code, _, err = cli("generate", str(exp), "--dry-run")
    assert code == 0 and err.startswith(f"warning: {exp}:")
    assert "seq_len=512 is above the maximum of tiny-gpt (256)" in err
    code, _, err = cli("generate", str(exp), "--dry-run", "--strict")
    assert code == 2 and err.startswith(f"error: {exp}:") and "seq_len=512" in err


def test_site_dir_and_templates_options(cli, tmp_path):
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "mine.yaml").write_text((ROOT / "site-configs" / "local.yaml").read_text()
                                     .replace("name: local", "name: mine"))
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "torchrun.sbatch.j2").write_text(
        '{% extends "_base.sbatch.j2" %}\n{% block program %}\n  echo custom {{ command|qcommand }}\n{% endblock %}\n')
    out = tmp_path / "out dir"
    code, stdout, err = cli("generate", SMOKE, "--site", "mine", "--site-dir", str(sites),
                            "--templates", str(templates), "--out", str(out))
    assert code == 0, err
    scripts = list((out / "scripts").glob("*.sbatch"))
    assert len(scripts) == 2 and all('  echo custom "$SLURM_SUBMIT_DIR"/trainer/train-' in s.read_text()
                                   for s in scripts)
    assert all("-n2-mine-" in s.name for s in scripts)
    code, stdout, _ = cli("sites", "list", "--site-dir", str(sites))
    assert any(line.startswith("mine ") for line in stdout.splitlines())


def test_unwritable_out_is_a_clear_error(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = cli("generate", SMOKE, "--out", str(blocker / "run"))
    assert code == 2
    assert err == (f"error: {blocker / 'run'}: cannot be created: {blocker} is a file, not a folder"
                   " (hint: choose another --out)\n")


def test_shipped_experiments_by_name(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("generate", "local-smoke", "--out", "run")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "plan.json").read_text())["experiment"] == "local-smoke"
    code, out, _ = cli("validate", "llama2-70b-pretrain", "xe9680-4cx7")
    assert out.splitlines() == ["ok: llama2-70b-pretrain (6 jobs)", "ok: xe9680-4cx7 (site)"]
    code, _, err = cli("generate", "nope")
    assert code == 2 and err.startswith("error: no experiment file or shipped experiment named 'nope'"
                                        " (hint: shipped experiments: llama2-70b-pretrain, llama2-7b-pretrain,")


def test_models_with_user_file(cli, tmp_path):
    models = tmp_path / "m.yaml"
    models.write_text("schema_version: 1\nmodels:\n  mine: {layers: 22, hidden: 2048, ffn_hidden: 5632, heads: 32,"
                      " kv_heads: 4, vocab: 32000, max_seq_len: 2048}\n")
    code, out, _ = cli("models", "--models-file", str(models), "--format", "csv")
    assert code == 0 and "mine,1100048384,22,2048,5632,32,4,32000,2048" in out.splitlines()  # raw: TinyLlama's published 1,100,048,384


def test_regenerating_a_smaller_sweep_removes_the_scripts_it_no_longer_has(cli, tmp_path, write_yaml):
    run = tmp_path / "run"
    two = write_yaml("two.yaml", Path(SMOKE).read_text())
    assert cli("generate", str(two), "--out", str(run))[0] == 0
    ddp, fsdp = sorted((run / "scripts").iterdir())
    assert "-ddp-" in ddp.name and "-fsdp-" in fsdp.name
    # fsdp was submitted (the manifest records it), ddp never was
    (run / "manifest.jsonl").write_text(json.dumps({"run_id": fsdp.stem, "job_id": "17", "state": "PENDING",
                                                    "submit_time": "2026-12-04T17:00:00Z"}) + "\n")
    one = write_yaml("one.yaml", Path(SMOKE).read_text().replace("parallel: [ddp, fsdp]", "parallel: [ddp]")
                     .replace("matrix:\n", "matrix:\n  steps: [30]\n"))
    code, out, err = cli("generate", str(one), "--out", str(run))
    assert code == 0
    [new] = [p for p in (run / "scripts").iterdir() if p not in (ddp, fsdp)]
    assert sorted((run / "scripts").iterdir()) == sorted([new, fsdp])  # ddp removed, fsdp kept
    assert err.splitlines()[0] == (f"wrote 2 files, 1 unchanged, removed 1 script of runs no longer in the plan,"
                           f" kept 1 script of submitted runs no longer in the plan, in {run}")
    assert json.loads((run / "manifest.jsonl").read_text())["run_id"] == fsdp.stem


def test_another_experiment_needs_force_and_keeps_the_manifest(cli, tmp_path, write_yaml):
    run = tmp_path / "run"
    assert cli("generate", SMOKE, "--out", str(run))[0] == 0
    manifest = json.dumps({"run_id": "x", "job_id": "3", "state": "COMPLETED", "submit_time": "2026-12-04T17:00:00Z"}) + "\n"
    (run / "manifest.jsonl").write_text(manifest)
    other = write_yaml("other.yaml", Path(SMOKE).read_text().replace("name: local-smoke", "name: other"))
    code, _, err = cli("generate", str(other), "--out", str(run))
    assert code == 2
    assert err == (f"error: {run / 'plan.json'}: the run directory holds experiment 'local-smoke', not 'other'"
                   " (hint: choose another --out, or pass --force to replace its plan (the manifest of"
                   " submitted runs is kept))\n")
    assert json.loads((run / "plan.json").read_text())["experiment"] == "local-smoke"
    code, _, _ = cli("generate", str(other), "--out", str(run), "--force")
    assert code == 0
    assert json.loads((run / "plan.json").read_text())["experiment"] == "other"
    assert (run / "manifest.jsonl").read_text() == manifest
