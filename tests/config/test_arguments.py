"""extra_args against the real program's key or flag set, and the image a launcher needs."""
from __future__ import annotations

from pathlib import Path

import pytest

from slurmkit.config.experiment import load_experiment, point_spec
from slurmkit.config.site import load_site
from slurmkit.errors import ConfigError
from slurmkit.plan.arguments import check_arguments
from slurmkit.plan.launch import megatron
from slurmkit.plan.launch.programs import FlagSet, Source
from slurmkit.plan.make import make_plan

HERE = Path(__file__).parent
# nemo, llama2-7b, xe9680-8cx7 (nemo:24.05); its extra_args line (the tokenizer) left out, so each
# test writes its own on line 14
BASE = "".join(line for line in (HERE / "data" / "base-experiment.yaml").read_text().splitlines(True)
               if not line.startswith("extra_args:"))
TOKENIZER = "model.tokenizer.model=/data/llama2/tokenizer.model"  # mandatory (???) in NeMo's Llama config
LLAMA = "NeMo megatron_llama_config (v2.0.0rc0)"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        make_plan(path)
    return err.value.lines()


def col(path: Path, item: str) -> int:
    """The 1-based column of an extra_args item on line 14 of the file, read from its text."""
    return path.read_text().splitlines()[13].index(item) + 1


def test_validate_prints_the_misspelt_override_with_the_nearest_key(cli, write_yaml):
    exp = write_yaml("exp.yaml", BASE + "extra_args:\n  - model.tokenizer.model=/t.model\n"
                     "  - model.tokenizr.model=/t.model\n")
    code, out, err = cli("validate", str(exp))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: {exp}:16:5: extra_args[1]: model.tokenizr.model is not a key of"
        f" {LLAMA} (hint: did you mean model.tokenizer.model?)"]


def test_prefixes_follow_hydra_struct_mode(write_yaml):
    exp = write_yaml("exp.yaml", BASE + "extra_args: [model.hidden_dropout=0.1, +model.init_method_std=0.01,"
                     " ++model.ffn_dropout=0.1, --cfg, hydra.verbose=true, model.data.data_prefx=/d,"
                     " exp_manager.checkpoint_callback_params.every_n_train_steps=5]\n")
    assert problems_of(exp) == [
        f"error: {exp}:14:{col(exp, '+model.init_method_std=0.01')}: extra_args[1]: model.init_method_std is in the YAML of"
        f" {LLAMA}, so Hydra refuses to add it with + (hint: write model.init_method_std=... without the +)",
        f"error: {exp}:14:{col(exp, 'model.data.data_prefx=/d')}: extra_args[5]: model.data.data_prefx is not a key of {LLAMA}"
        " (hint: did you mean +model.data.data_prefix?)",
    ]
    # a plain override of a key read from code is judged on the built command (slurmkit may add
    # the key itself), so it shows once the errors above are gone
    plain = write_yaml("plain.yaml", BASE + "extra_args: [exp_manager.checkpoint_callback_params.every_n_train_steps=5,"
                       f" {TOKENIZER}]\n")
    assert problems_of(plain) == [
        f"error: {plain}:14:14: extra_args[0]: exp_manager.checkpoint_callback_params.every_n_train_steps is not"
        f" in the YAML of {LLAMA}, so Hydra refuses to change it (hint: write"
        " +exp_manager.checkpoint_callback_params.every_n_train_steps=... (the program reads it from code))"]
    fixed = write_yaml("fixed.yaml", BASE + f"extra_args: [+exp_manager.checkpoint_callback_params.every_n_train_steps=5,"
                       f" {TOKENIZER}]\n")
    assert len(make_plan(fixed).jobs) == 1


def test_extra_args_never_replace_what_the_job_fields_set(write_yaml):
    # Hydra would take each of these (the last value wins), but the run would then differ from
    # its parameters (cp, steps, the model's hidden size): refused whatever the prefix
    exp = write_yaml("exp.yaml", BASE + "extra_args: [model.context_parallel_size=2, ++trainer.max_steps=9,"
                     f" +model.context_parallel_size=2, model.hidden_size=4096, {TOKENIZER}]\n")
    hint = "(hint: change that field instead; extra_args may only add settings)"
    assert problems_of(exp) == [
        f"error: {exp}:14:{col(exp, 'model.context_parallel_size=2')}: extra_args[0]: slurmkit sets model.context_parallel_size from the experiment's"
        f" fields; a second value would make the run differ from its parameters {hint}",
        f"error: {exp}:14:{col(exp, '++trainer.max_steps=9')}: extra_args[1]: slurmkit sets trainer.max_steps from the experiment's"
        f" fields; a second value would make the run differ from its parameters {hint}",
        f"error: {exp}:14:{col(exp, '+model.context_parallel_size=2')}: extra_args[2]: slurmkit sets model.context_parallel_size from the experiment's"
        f" fields; a second value would make the run differ from its parameters {hint}",
        f"error: {exp}:14:{col(exp, 'model.hidden_size=4096')}: extra_args[3]: slurmkit sets model.hidden_size from the experiment's"
        f" fields; a second value would make the run differ from its parameters {hint}",
    ]


def test_fine_tuning_keys_come_from_the_fine_tuning_config(write_yaml):
    text = BASE.replace("workload: pretrain", "workload: lora") + "dataset: /d\n"
    ok = write_yaml("ok.yaml", text + "extra_args: [model.peft.lora_tuning.adapter_dim=16, ++model.peft.lora_tuning.alpha=32]\n")
    assert len(make_plan(ok).jobs) == 1
    bad = write_yaml("bad.yaml", text + "extra_args: [model.tokenizer.model=/t.model]\n")
    [line] = problems_of(bad)
    assert line.startswith(f"error: {bad}:15:14: extra_args[0]: model.tokenizer.model is not"
                           " a key of NeMo megatron_gpt_finetuning_config (v2.0.0rc0)")


def test_nemo_needs_an_image_slurmkit_knows(write_yaml):
    unknown = write_yaml("unknown.yaml", BASE + "container_image: nvcr.io/nvidia/nemo:99.01\n")
    assert problems_of(unknown) == [
        f"error: {unknown}:14:18: launcher nemo: slurmkit does not know the program versions in container image"
        " 'nvcr.io/nvidia/nemo:99.01', so it cannot check the job's arguments (hint: known images:"
        " nvcr.io/nvidia/nemo:24.05 (set container_image:, or the site's software.container.image))"]
    frozen = HERE / "data" / "sites" / "local-frozen.yaml"
    none = write_yaml("none.yaml", BASE.replace("sites: [xe9680-8cx7]", f"sites: [{frozen}]")
                      .replace("llama2-7b", "tiny-gpt").replace("gbs: 128", "gbs: 2").replace("seq_len: 4096",
                                                                                               "seq_len: 64"))
    assert problems_of(none) == [
        f"error: {none}:5:11: launcher nemo needs a container image: its arguments are checked against the"
        " program the image ships, and site local-frozen names none (hint: known images:"
        " nvcr.io/nvidia/nemo:24.05 (set container_image:, or the site's software.container.image))"]


def test_a_launcher_without_a_program_checks_nothing(write_yaml, monkeypatch):
    monkeypatch.setattr(megatron, "program", lambda spec, site, model=None: None)
    exp = write_yaml("exp.yaml", BASE.replace("launcher: nemo", "launcher: megatron")
                     + "extra_args: [--no-such-flag]\n")
    assert len(make_plan(exp).jobs) == 1


def test_flags_are_checked_against_the_flag_set(write_yaml, monkeypatch):
    flags = FlagSet("test-flags", "pretrain_gpt.py", "test", (Source("r", "t", "p"),),
                    flags={"--seq-length": {"nargs": None}, "--use-flash-attn": {"nargs": 0}})
    monkeypatch.setattr(megatron, "program", lambda spec, site, model=None: flags)
    exp = write_yaml("exp.yaml", BASE.replace("launcher: nemo", "launcher: megatron")
                     + "extra_args: [--seq-length, '4096', --seq-length=4096, --use-flash-atn]\n")
    loaded = load_experiment(exp)
    problems = [str(p) for p in check_arguments(
        make_spec(loaded), site_of(loaded), loaded, where_of(loaded))]
    assert problems == [f"{exp}:14:55: extra_args[3]: --use-flash-atn is not a flag of pretrain_gpt.py (test)"
                        " (hint: did you mean --use-flash-attn?)"]


def where_of(loaded):
    """As make_plan locates a point's values: where(field, i) is the i-th element of a list field."""
    def where(*names):
        if len(names) == 2 and isinstance(names[1], int):
            return loaded.doc.location(names)
        return loaded.doc.location()
    return where


def make_spec(loaded):
    return point_spec(loaded, loaded.points[0])[0]


def site_of(loaded):
    return load_site(loaded.experiment.sites[0])[0]


def test_a_mandatory_key_the_job_leaves_unset_is_an_error(write_yaml):
    # NeMo's Llama config has `tokenizer: {model: ???}`: the job would stop at start-up reading it
    exp = write_yaml("exp.yaml", BASE)
    assert problems_of(exp) == [
        f"error: {exp}:5:11: model.tokenizer.model is mandatory in NeMo megatron_llama_config (v2.0.0rc0)"
        " and the job does not set it (hint: add model.tokenizer.model=... to extra_args)"]
    given = write_yaml("given.yaml", BASE + f"extra_args: [{TOKENIZER}]\n")
    assert len(make_plan(given).jobs) == 1
    # fine-tuning's mandatory keys (the .nemo, the JSONL files) are set by slurmkit's own overrides
    lora = write_yaml("lora.yaml", BASE.replace("workload: pretrain", "workload: lora") + "dataset: /d\n")
    assert len(make_plan(lora).jobs) == 1
