"""`slurmkit compare|report|demo` through the real entry point: exact text, exit codes, files."""
from __future__ import annotations

import csv
import io
import json

import pytest
from pypdf import PdfReader


def test_compare_table(cli, results_dir):
    code, out, err = cli("compare", str(results_dir), "--metric", "time_to_target_s")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "8 adapters vs 4 adapters: extrapolated time for the target steps (s)"
    assert lines[1].split() == ["Model", "Nodes", "4", "adapters", "(baseline)", "[d]", "8", "adapters",
                                "[d]", "Ratio", "[d]", "Change", "[d]", "Verdict", "[d]"]
    assert lines[-1].startswith("m = measured: read from a log or from Slurm accounting")
    assert lines[3].split() == ["m7", "1", "1,010", "±", "14.142", "(n=2)", "1,000", "±", "14.142",
                                "(n=2)", "0.990", "-1.0%", "within", "noise", "(±2.8%)"]
    assert lines[4].split() == ["m7", "2", "600", "±", "0.000", "(n=2)", "500", "±", "0.000", "(n=2)",
                                "0.833", "-16.7%", "faster", "by", "16.7%"]
    assert "Scaling against the smallest node count" in out and "Cost of the target steps" in out


def test_compare_csv_and_json_carry_raw_numbers(cli, results_dir):
    code, out, _ = cli("compare", str(results_dir), "--format", "csv", "--by", "site")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["metric"] for r in rows} == {"time_to_target_s", "step_time_mean_s", "tokens_per_s_per_gpu"}
    two = next(r for r in rows if r["nodes"] == "2" and r["metric"] == "time_to_target_s")
    assert (two["baseline"], two["candidate"], float(two["delta"])) == ("A", "B", -100.0)
    code, out, _ = cli("compare", str(results_dir), "--format", "json")
    doc = json.loads(out)
    assert doc["by"] == "adapters_per_node" and doc["baseline"] == 4
    assert {r["efficiency"] for r in doc["scaling"] if r["site"] == "A"} == {1.0, 0.9}


def test_compare_markdown(cli, results_dir):
    code, out, _ = cli("compare", str(results_dir), "--format", "markdown")
    assert code == 0 and out.startswith("### 8 adapters vs 4 adapters: extrapolated time for the target steps (s)\n\n"
                                  "| Model | Nodes | 4 adapters (baseline) [d] | 8 adapters [d] |")
    assert "|---|---:|---:|---:|---:|---:|---|" in out


def test_compare_errors_are_one_line(cli, tmp_path, results_dir):
    code, out, err = cli("compare", str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert err == (f"error: no results folder {tmp_path / 'nope'} (hint: create it with "
                   f"`slurmkit parse --out {tmp_path / 'nope'} <logs>`)\n")
    (tmp_path / "empty").mkdir()
    code, _, err = cli("compare", str(tmp_path / "empty"))
    assert code == 2
    assert err == (f"error: no runs in {tmp_path / 'empty'} (hint: parse logs first: "
                   f"`slurmkit parse --out {tmp_path / 'empty'} <logs>`)\n")
    code, _, err = cli("compare", str(results_dir), "--metric", "speed")
    assert code == 2 and err.startswith("error: unknown metric 'speed' (hint: one of time_to_target_s, ")
    code, _, err = cli("compare", str(results_dir), "--by", "site", "--baseline", "Z")
    assert (code, err) == (2, "error: --baseline 'Z' is not a value of site (hint: values present: A, B)\n")


def test_compare_notes_go_to_stderr(cli, tmp_path, runs, steps, write):
    folder = write(tmp_path / "one-site", runs[runs["site"] == "A"], steps)
    code, out, err = cli("compare", str(folder))
    assert code == 0
    assert err == "note: no runs pair up: no two configurations differ in exactly one compared field\n"
    assert out.startswith("Scaling against the smallest node count")


def test_report_writes_html_and_pdf(cli, results_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("report", str(results_dir), "--pdf", "out/r.pdf", "--title", "Hand")
    assert code == 0 and err == ""
    assert out.splitlines() == ["wrote reports/results.html", "wrote out/r.pdf",
                                "6 findings, 8 charts, 1 notices"]
    assert "<title>Hand</title>" in (tmp_path / "reports" / "results.html").read_text()
    assert len(PdfReader(tmp_path / "out" / "r.pdf").pages) >= 4


def test_report_on_empty_results_says_so(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, _ = cli("report", str(tmp_path / "empty"), "-o", str(tmp_path / "e.html"))
    assert code == 0 and out.splitlines()[-1] == "0 findings, 0 charts, 1 notices"
    assert "holds no runs" in (tmp_path / "e.html").read_text()


def test_demo_runs_the_whole_pipeline_offline(cli, tmp_path):
    code, out, err = cli("demo", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:3] == [
        f"generated 2 run directories under {tmp_path / 'demo'}/runs (plan.json + sbatch scripts)",
        "wrote 14 SYNTHETIC logs (performance model, see slurmkit/samples/synthetic.py)",
        f"parsed 17 logs (synthetic + real public samples) into {tmp_path / 'demo'}/results"]
    html = (tmp_path / "demo" / "reports" / "demo.html").read_text()
    assert "14 of 17 runs come from SYNTHETIC logs" in html
    assert "8 adapters vs 4 adapters (extrapolated time for the target steps): llama2-70b" in html
    assert html.count("<svg") == 8
    assert "nccl timeout" in html and "time limit" in html               # the real public failures
    text = " ".join(p.extract_text() for p in PdfReader(tmp_path / "demo" / "reports" / "demo.pdf").pages)
    assert "SYNTHETIC" in text
    logs = sorted((tmp_path / "demo" / "runs" / "llama2-7b-pretrain" / "logs").glob("*.out"))
    assert len(logs) == 8 and logs[0].read_text().startswith("# SYNTHETIC LOG")
    # rerunning rebuilds the same results, not duplicates
    code, out, _ = cli("demo", "--out", str(tmp_path / "demo"))
    assert code == 0 and "parsed 17 logs" in out


@pytest.mark.parametrize("case", ["all_failed", "one_run", "no_pairs"])
def test_report_on_bad_input_says_so_without_traceback(cli, tmp_path, runs, steps, write, case):
    chosen = {"all_failed": runs.assign(status="failed", failure_reason="oom"),
              "one_run": runs.iloc[[0]], "no_pairs": runs[runs["site"] != "B"]}[case]
    folder = write(tmp_path / case, chosen, steps)
    code, out, err = cli("report", str(folder), "-o", str(tmp_path / "r.html"),
                         "--pdf", str(tmp_path / "r.pdf"))
    assert code == 0 and err == ""
    html = (tmp_path / "r.html").read_text()
    expected = {"all_failed": "None of the 11 runs completed", "one_run": "The results hold a single run",
                "no_pairs": "no runs pair up"}[case]
    assert expected in html
    drawn = int(out.splitlines()[-1].split(" findings, ")[1].split()[0])
    assert html.count("<svg") == drawn and (drawn == 0) == (case == "all_failed")
    assert "Not drawn:" in html or case == "no_pairs"
