import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def reference_dir():
    from refdumps import REF_DIR

    if not REF_DIR.is_dir():
        pytest.fail(f"reference layer dumps not found at {REF_DIR} (set PLAID_REFERENCE_DIR)")
    return REF_DIR


def run_plaid(*args: str, env: dict | None = None):
    """Run the real CLI in a subprocess; returns CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    full_env.pop("PLAID_DEBUG", None) if not (env and "PLAID_DEBUG" in env) else None
    return subprocess.run([sys.executable, "-m", "plaid", *args], capture_output=True, text=True,
                          env=full_env, timeout=300)


@pytest.fixture(scope="session")
def tflite_cache(tmp_path_factory):
    """A conversion cache shared by the tests of one session (conversions take seconds)."""
    return tmp_path_factory.mktemp("plaid-cache")


def edit_file(path: Path, edits: dict[str, str]) -> None:
    """Replace each key of ``edits`` by its value in the file (each key must be there)."""
    text = path.read_text()
    for old, new in edits.items():
        assert old in text, (path.name, old)
        text = text.replace(old, new)
    path.write_text(text)


def preset_env(tmp_path, cache, space: str, space_toml: str, host_edits: dict[str, str]) -> dict:
    """Environment for a CLI run on a copy of configs/ with a tiny space preset and edited
    host target, its own latency-table folder and the session's conversion cache."""
    import shutil

    configs = tmp_path / "configs"
    shutil.copytree(Path(__file__).resolve().parents[1] / "configs", configs)
    (configs / "spaces" / f"{space}.toml").write_text(space_toml)
    edit_file(configs / "targets" / "host.toml", host_edits)
    return {"PLAID_CONFIG_DIR": str(configs), "PLAID_CACHE": str(cache), "PLAID_LUT_DIR": str(tmp_path / "luts")}
