"""`pip install .` ships the templates, site configs and experiments inside the package."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("hatchling", reason="the test extra installs hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True)
    return next(out.glob("slurmkit-*.whl"))


def test_wheel_contains_shipped_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "site-configs", "experiments"):
        shipped = {p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()}
        assert shipped and {f"slurmkit/_data/{folder}/{n}" for n in shipped} <= names


def test_wheel_declares_the_console_script(wheel):
    with zipfile.ZipFile(wheel) as zf:
        entry_points = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        assert "slurmkit = slurmkit.cli:main" in zf.read(entry_points).decode()


def test_installed_package_works_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}

    def slurmkit(*args):
        return subprocess.run([sys.executable, "-m", "slurmkit", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True)

    where = subprocess.run([sys.executable, "-c", "import slurmkit; print(slurmkit.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True).stdout
    assert where.startswith(str(target))
    listing = slurmkit("sites", "list")
    assert listing.returncode == 0, listing.stderr
    assert "xe9680-8cx7" in listing.stdout and "local" in listing.stdout
    generated = slurmkit("generate", "local-smoke", "--out", "run")  # a shipped experiment, by name
    assert generated.returncode == 0, generated.stderr
    assert len(list((elsewhere / "run" / "scripts").glob("*.sbatch"))) == 2
    # the installed package carries the example trainer into the run directory, bytes unchanged
    (trainer,) = (elsewhere / "run" / "trainer").iterdir()
    assert trainer.read_bytes() == (ROOT / "slurmkit" / "trainer" / "train.py").read_bytes()
