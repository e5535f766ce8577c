"""prepare-data: Dolly and Alpaca records (built in each data set's published schema) become the
JSONL that NeMo's fine-tuning script reads, split deterministically, written atomically."""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from slurmkit.plan.finetune_data import prepare, prompt_text
from slurmkit.plan.launch.nemo1 import FINETUNE_INPUT_KEY, FINETUNE_OUTPUT_KEY, FINETUNE_PROMPT_TEMPLATE

ROOT = Path(__file__).parents[2]

# databricks-dolly-15k: one object per line, fields instruction, context, response, category
DOLLY = [
    {"instruction": "When did Virgin Australia start operating?",
     "context": "Virgin Australia commenced services on 31 August 2000.",
     "response": "Virgin Australia commenced services on 31 August 2000.", "category": "closed_qa"},
    {"instruction": "Name three primary colours.", "context": "",
     "response": "  Red, yellow and blue.\n", "category": "open_qa"},
    {"instruction": "Summarise the passage.", "context": "A long passage.", "response": "",
     "category": "summarization"},
    {"instruction": "Écris « bonjour ».", "context": "", "response": "bonjour", "category": "generation"},
]
# Stanford Alpaca alpaca_data.json: one JSON array of objects with instruction, input, output
ALPACA = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "1. Eat well.\n2. Exercise.\n3. Sleep."},
    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    {"instruction": "Say nothing.", "input": "", "output": "   "},
]


def write_dolly(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_alpaca(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records, indent=4), encoding="utf-8")  # as the published file is laid out
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_dolly_records_become_prompt_and_response(tmp_path):
    prepared = prepare("dolly", write_dolly(tmp_path / "dolly.jsonl", DOLLY), fraction=0.3, seed=7)
    assert (prepared.records, prepared.dropped_empty) == (4, 1)
    examples = sorted(prepared.training + prepared.validation, key=lambda e: e["output"])
    assert examples == [
        {"input": "Instruction: Name three primary colours.\n\nResponse:", "output": "Red, yellow and blue."},
        {"input": "Instruction: When did Virgin Australia start operating?\n\n"
                  "Context: Virgin Australia commenced services on 31 August 2000.\n\nResponse:",
         "output": "Virgin Australia commenced services on 31 August 2000."},
        {"input": "Instruction: Écris « bonjour ».\n\nResponse:", "output": "bonjour"},
    ]
    assert len(prepared.validation) == 1                         # round(3 * 0.3)


def test_alpaca_records_become_prompt_and_response(tmp_path):
    prepared = prepare("alpaca", write_alpaca(tmp_path / "alpaca_data.json", ALPACA), fraction=0.5)
    assert (prepared.records, prepared.dropped_empty) == (3, 1)
    assert sorted(prepared.training + prepared.validation, key=lambda e: e["output"]) == [
        {"input": "Instruction: Give three tips for staying healthy.\n\nResponse:",
         "output": "1. Eat well.\n2. Exercise.\n3. Sleep."},
        {"input": "Instruction: Translate to French.\n\nContext: Good morning\n\nResponse:", "output": "Bonjour"},
    ]


def test_objects_fill_the_template_the_generated_jobs_name(tmp_path):
    """Each object holds exactly the template's placeholders, and the fine-tuning scripts name
    the same template, label and truncation keys."""
    from slurmkit.plan.make import make_plan
    from slurmkit.plan.render import render_plan, shell_quote
    placeholders = re.findall(r"{(\w+)}", FINETUNE_PROMPT_TEMPLATE)
    assert sorted(placeholders) == sorted([FINETUNE_INPUT_KEY, FINETUNE_OUTPUT_KEY])
    prepared = prepare("dolly", write_dolly(tmp_path / "d.jsonl", DOLLY))
    assert all(set(e) == set(placeholders) for e in prepared.training + prepared.validation)
    sample = FINETUNE_PROMPT_TEMPLATE.format(**prepared.training[0])
    assert sample.endswith("Response: " + prepared.training[0][FINETUNE_OUTPUT_KEY])
    plan = render_plan(make_plan(ROOT / "experiments" / "llama2-finetune.yaml"))
    for job in plan.jobs[:3]:
        assert f"model.data.train_ds.label_key={FINETUNE_OUTPUT_KEY}" in job.text
        assert f"model.data.train_ds.truncation_field={FINETUNE_INPUT_KEY}" in job.text
        assert shell_quote(f'model.data.train_ds.prompt_template="{FINETUNE_PROMPT_TEMPLATE}"') in job.text


def test_prompt_leaves_out_an_empty_context():
    assert prompt_text("Do it.", "") == "Instruction: Do it.\n\nResponse:"
    assert prompt_text("Do it.", "With this.") == "Instruction: Do it.\n\nContext: With this.\n\nResponse:"


def many(n: int) -> list[dict]:
    return [{"instruction": f"Question {i}?", "context": "", "response": f"Answer {i}.", "category": "open_qa"}
            for i in range(n)]


def test_split_is_deterministic_and_complete(cli, tmp_path):
    source = write_dolly(tmp_path / "dolly.jsonl", many(200))
    outputs = []
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        code, out, err = cli("prepare-data", "dolly", str(source), "--out", str(tmp_path / name),
                             "--validation-fraction", "0.1", "--seed", seed)
        assert code == 0 and err == ""
        outputs.append({f: (tmp_path / name / f).read_bytes() for f in ("training.jsonl", "validation.jsonl")})
    assert outputs[0] == outputs[1]                              # same input and seed: same bytes
    assert outputs[0]["validation.jsonl"] != outputs[2]["validation.jsonl"]
    training, validation = (read_jsonl(tmp_path / "a" / f) for f in ("training.jsonl", "validation.jsonl"))
    assert len(validation) == 20 and len(training) == 180
    numbers = [int(e["output"].split()[1].rstrip(".")) for e in training + validation]
    assert sorted(numbers) == list(range(200))                   # every record once
    assert [int(e["output"].split()[1].rstrip(".")) for e in training] == sorted(
        int(e["output"].split()[1].rstrip(".")) for e in training)   # input order kept


def test_cli_reports_what_it_wrote_and_keeps_the_umask(cli, tmp_path):
    source = write_alpaca(tmp_path / "alpaca_data.json", ALPACA)
    old = os.umask(0o027)
    try:
        code, out, _ = cli("prepare-data", "alpaca", str(source), "--out", str(tmp_path / "alpaca"))
    finally:
        os.umask(old)
    assert code == 0
    assert out.strip() == (f"wrote {tmp_path}/alpaca/training.jsonl (1 record) and "
                           f"{tmp_path}/alpaca/validation.jsonl (1 record) from 3 records of {source}; "
                           "dropped 1 with an empty response")
    for name in ("training.jsonl", "validation.jsonl"):
        assert stat.S_IMODE((tmp_path / "alpaca" / name).stat().st_mode) == 0o640
    assert sorted(p.name for p in (tmp_path / "alpaca").iterdir()) == ["training.jsonl", "validation.jsonl"]


@pytest.mark.parametrize("kind, text, where, message", [
    ("dolly", '{"instruction": "a", "context": "", "response": "b", "category": "x"}\n{"instruction": "a",,}\n',
     "2:21", "not JSON: Expecting property name enclosed in double quotes (hint: dolly is JSON Lines: "
             "one record object per line)"),
    ("dolly", '{"instruction": "a", "context": "", "response": "b", "category": "x"}\n\n'
              '{"instruction": "a", "context": "", "category": "x"}\n',
     "3:1", "record has no field 'response' (hint: dolly records need instruction, context, response "
            "(its published schema))"),
    ("dolly", '{"instruction": "a", "context": null, "response": "b", "category": "x"}\n',
     "1:1", "field 'context' is NoneType, not a string (hint: dolly records hold text in instruction, "
            "context, response)"),
    ("dolly", '[{"instruction": "a", "input": "", "output": "b"}]\n',
     "1:1", "a record must be a JSON object, not list (hint: this looks like a JSON array: use `slurmkit "
            "prepare-data alpaca`)"),
    ("alpaca", '[\n  {"instruction": "a", "input": "", "output": "b"},\n  {"instruction": "c", "output": "d"}\n]\n',
     "3:3", "record has no field 'input' (hint: alpaca records need instruction, input, output "
            "(its published schema))"),
    ("alpaca", '[\n  {"instruction": "a", "input": "", "output": "b"}\n  {"instruction": "c"}\n]\n',
     "3:3", "expected ',' or ']' after a record (hint: give the published alpaca_data.json unchanged)"),
    ("alpaca", '{"instruction": "a", "context": "", "response": "b", "category": "x"}\n',
     "1:1", "expected a JSON array of records (hint: this looks like JSON Lines: use `slurmkit "
            "prepare-data dolly`)"),
    ("alpaca", '[\n  {"instruction": "a", "input": "", "output": tru}\n]\n',
     "2:47", "not JSON: Expecting value (hint: give the published alpaca_data.json unchanged)"),
])
def test_bad_input_is_one_line_with_its_place_and_nothing_is_written(cli, tmp_path, kind, text, where, message):
    source = tmp_path / "input.json"
    source.write_text(text, encoding="utf-8")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "training.jsonl").write_text("old\n")
    code, out, err = cli("prepare-data", kind, str(source), "--out", str(out_dir))
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"error: {source}:{where}: {message}"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["training.jsonl"]
    assert (out_dir / "training.jsonl").read_text() == "old\n"


def test_too_few_records_and_missing_files_are_errors(cli, tmp_path):
    source = write_dolly(tmp_path / "one.jsonl", DOLLY[:1] + DOLLY[2:3])
    code, _, err = cli("prepare-data", "dolly", str(source), "--out", str(tmp_path / "out"))
    assert code == 2 and err.strip() == ("error: 1 record(s) with a response: too few to split (hint: give "
                                        "the whole data set (training and validation both need records))")
    code, _, err = cli("prepare-data", "alpaca", str(tmp_path / "nope.json"), "--out", str(tmp_path / "out"))
    assert code == 2 and err.strip() == f"error: no such file: {tmp_path}/nope.json (hint: download alpaca_data.json first)"
    assert not (tmp_path / "out").exists()
    code, _, err = cli("prepare-data", "dolly", str(source), "--out", str(tmp_path / "out"),
                       "--validation-fraction", "1")
    assert code == 2 and "--validation-fraction" in err


def test_line_separators_inside_strings_and_a_byte_order_mark(tmp_path):
    """JSON strings may hold U+2028 unescaped (a str.splitlines() reader would cut the record);
    a UTF-8 BOM before the first record is tolerated."""
    record = {"instruction": "Join\u2028these", "context": "", "response": "ok\u2029done", "category": "x"}
    text = "\ufeff" + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (record, DOLLY[0]))
    (tmp_path / "d.jsonl").write_text(text, encoding="utf-8")
    prepared = prepare("dolly", tmp_path / "d.jsonl")
    outputs = sorted(e["output"] for e in prepared.training + prepared.validation)
    assert outputs == ["Virgin Australia commenced services on 31 August 2000.", "ok\u2029done"]


def test_the_shipped_fine_tuning_experiment_names_a_learning_rate_per_scheme():
    """SFT 1e-6, LoRA and p-tuning 1e-4, as the NeMo launcher 24.05 configs set them (sources in
    the experiment file and docs/configs.md), reaching NeMo as model.optim.lr."""
    from slurmkit.plan.make import make_plan
    from slurmkit.plan.render import render_plan
    plan = render_plan(make_plan(ROOT / "experiments" / "llama2-finetune.yaml", strict=True))
    assert not plan.warnings
    rates = {(job.params["workload"], re.search(r"model\.optim\.lr=(\S+)", job.text).group(1)) for job in plan.jobs}
    assert {(w, float(v)) for w, v in rates} == {("sft", 1e-6), ("lora", 1e-4), ("ptuning", 1e-4)}


def test_the_command_defaults_are_the_library_defaults():
    """The command module imports only click (fast --help), so it states the defaults again."""
    from slurmkit.cli.data import prepare_data
    from slurmkit.plan import finetune_data
    defaults = {p.name: p.default for p in prepare_data.params}
    assert defaults["validation_fraction"] == finetune_data.DEFAULT_VALIDATION_FRACTION
    assert defaults["seed"] == finetune_data.DEFAULT_SEED
