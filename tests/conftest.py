"""Test set-up: CPU only, no hub access, data from ../shared/data when present."""
import os

# Set before torch / transformers / datasets are imported anywhere in the suite. The GPU tests
# (PIXELREP_TEST_GPU=1 pytest -m gpu, as scripts/device_run.sh runs them) keep the device.
if os.environ.get("PIXELREP_TEST_GPU") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(os.environ.get("PIXELREP_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $PIXELREP_DATA); tests that need it skip with the reason when it is absent."""
    if not (SHARED_DATA / "sts" / "stsb" / "en" / "test.jsonl").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set PIXELREP_DATA)")
    return SHARED_DATA
