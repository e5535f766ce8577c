#!/usr/bin/env python3
"""Write torchrun's flag set (``kind: argparse``) at one PyTorch release from that release's wheel.

pytorch/pytorch is too large to mirror here, so the source is read from the official wheel of the
release (``pip download --no-deps torch==X.Y.Z``): its ``torch/version.py`` names the commit it
was built from (``git_version``, the commit of tag vX.Y.Z) and it holds ``torch/distributed/run.py``
as at that commit. ``get_args_parser`` there is read with ``ast`` by
``extract_argparse.extract``; nothing is imported. torchrun's two custom actions, from
``torch/distributed/argparse_util.py``, act as built-ins: ``env`` stores one value (its default
comes from a ``PET_*`` variable) and ``check_env`` is a switch (``nargs=0``, ``const=True``).

    pip download --no-deps -d /tmp/wheels torch==2.3.0
    scripts/programs/extract_torchrun.py /tmp/wheels/torch-2.3.0-*.whl \\
        --out slurmkit/data/programs/torchrun-v2.3.0.json
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_argparse import emit_flag_set, extract

RUN_PY = "torch/distributed/run.py"
ACTIONS = {"env": "store", "check_env": "store_true"}  # torch/distributed/argparse_util.py


def flag_set(wheel: Path) -> tuple[dict, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        version_py = archive.read("torch/version.py").decode()
        source = archive.read(RUN_PY).decode()
    version = re.search(r"^__version__ = '([^'+]+)", version_py, re.MULTILINE).group(1)
    commit = re.search(r"^git_version = '([0-9a-f]{40})'", version_py, re.MULTILINE).group(1)
    found = extract(source, RUN_PY, "get_args_parser", ACTIONS)
    tag = f"v{version}"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    data = {"kind": "argparse", "program": "torchrun", "version": tag,
            "sources": [{"repo": "pytorch/pytorch", "tag": tag, "path": RUN_PY, "commit": commit,
                         "entry": "get_args_parser", "flag_count": len(found.flags),
                         "read_from": f"{wheel.name} (PyPI) sha256 {digest}"}],
            "allow_abbrev": found.allow_abbrev,
            "flags": {k: {**v, "path": RUN_PY} for k, v in sorted(found.flags.items())},
            "positionals": [{**p, "path": RUN_PY} for p in found.positionals]}
    return data, found.warnings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--out", type=Path, help="write here (default: stdout)")
    args = ap.parse_args(argv)
    data, warnings = flag_set(args.wheel)
    return emit_flag_set(data, warnings, args.out, f"of torchrun {data['version']}")


if __name__ == "__main__":
    sys.exit(main())
