#!/usr/bin/env python3
"""Write the example trainer's flag set (``kind: argparse``) from ``slurmkit/trainer/train.py``
(``parse_args``, read with ``ast``), so ``validate`` checks a torchrun experiment's
``extra_args`` (which follow the trainer's own arguments) like any program's flags.
tests/config/test_torchrun.py fails when the shipped file differs from a fresh extraction.

    scripts/programs/extract_trainer.py --out slurmkit/data/programs/slurmkit-trainer.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_argparse import dump_flag_set, extract

ROOT = Path(__file__).resolve().parents[2]
TRAINER = "slurmkit/trainer/train.py"


def flag_set() -> dict:
    found = extract((ROOT / TRAINER).read_text(encoding="utf-8"), TRAINER, "parse_args")
    if found.warnings or found.positionals:
        raise SystemExit(f"error: {TRAINER}: {found.warnings or found.positionals}")
    return {"kind": "argparse", "program": "slurmkit example trainer", "version": "this checkout",
            "sources": [{"repo": "slurmkit", "tag": "this checkout", "path": TRAINER, "entry": "parse_args",
                         "flag_count": len(found.flags)}],
            "allow_abbrev": found.allow_abbrev,
            "flags": {k: {**v, "path": TRAINER} for k, v in sorted(found.flags.items())}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--out", type=Path, help="write here (default: stdout)")
    args = ap.parse_args(argv)
    text = dump_flag_set(flag_set())
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
