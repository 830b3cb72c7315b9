"""The newcomer's path: every ``bash`` block of README.md runs as written, in order, from a scratch folder.

Commands run in smoke mode (``PCHW_SMOKE=1``: toy data sizes, see :mod:`pchw.smoke`) with ``pchw``
on the PATH and a private cache that borrows only the MNIST data already on this machine (tests
never download). ``make`` lines name a Makefile target that must exist; ``make demo`` runs as the
``pchw demo`` its recipe calls; ``make test`` (this suite), ``make bench`` and ``benchmarks/`` scripts are
not rerun (the scripts must exist).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pchw.data import MNIST_WHEEL, cache_dir

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash fences, in order."""
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    """The command lines of a block: continuations joined, comment-only and blank lines dropped."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_block_parser_joins_continuations_and_drops_comments():
    text = "x\n```bash\na --b \\\n    c  # note\n# only a comment\n\nd\n```\n```python\ne\n```\n"
    [block] = bash_blocks(text)
    assert commands(block) == ["a --b      c  # note", "d"]


def _environment(tmp_path: Path) -> dict[str, str]:
    real = cache_dir()
    cache = tmp_path / "cache"
    cache.mkdir()
    borrowed = [p for p in (real / "wheels", real / "mnist.npz") if p.exists()]
    if not (real / "wheels" / MNIST_WHEEL).is_file() and not (real / "mnist.npz").is_file():
        pytest.skip(f"MNIST is not on this machine (no {MNIST_WHEEL} or mnist.npz in {real}); run `make data`")
    for path in borrowed:
        (cache / path.name).symlink_to(path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "pchw"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "cli.py"}" "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT),
            "PCHW_SMOKE": "1", "PCHW_CACHE": str(cache), "OPENBLAS_NUM_THREADS": "1"}


def _as_run(line: str, makefile: str) -> str | None:
    """The shell command to run for a README line (None: checked, not run)."""
    scripts = [word for word in line.split() if word.startswith("benchmarks/")]
    if scripts:  # benchmarks time the machine for minutes: the script must exist, it is not run here
        assert all((ROOT / word).is_file() for word in scripts), f"README runs {scripts}: no such script"
        return None
    if not line.startswith("make "):
        return line
    target = line.split()[1]
    assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"README runs `make {target}`: no such target"
    if target == "demo":
        assert re.search(r"^demo:.*\n\t\$\(VENV\)/bin/pchw demo$", makefile, flags=re.M)
        return "pchw demo"
    return None


@pytest.mark.slow
def test_every_readme_command_runs_in_order_from_a_fresh_folder(tmp_path):
    env = _environment(tmp_path)
    work = tmp_path / "clone"
    work.mkdir()
    makefile = MAKEFILE.read_text()
    blocks = bash_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    ran = 0
    for block in blocks:
        for line in commands(block):
            command = _as_run(line, makefile)
            if command is None:
                continue
            proc = subprocess.run(["bash", "-c", f"set -euo pipefail\n{command}"], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=1800)
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            assert proc.returncode == 0, f"README command failed ({proc.returncode}): {line}\n{tail}"
            assert "Traceback" not in proc.stderr, f"{line}\n{tail}"
            ran += 1
    assert ran >= 20
    assert (work / "runs" / "mupc9" / "checkpoint.pt").is_file()
    assert (work / "results" / "demo" / "report.html").is_file()
