"""The environment of a Chalice stage, read from .chalice/config.json, so the
CLI and the local stack see exactly what the deployed functions see."""

from __future__ import annotations

import json
import os
from pathlib import Path

from chalicelib.settings import reload

PROJECT_DIR = Path(__file__).resolve().parents[1]
CONFIG = PROJECT_DIR / ".chalice" / "config.json"


def _config() -> dict:
    return json.loads(CONFIG.read_text())


def deployed_environment() -> dict[str, str]:
    """The variables every stage's functions get."""
    return _config().get("environment_variables", {})


def stage_environment(stage: str) -> dict[str, str]:
    config = _config()
    if stage not in config["stages"]:
        raise SystemExit(
            f"unknown stage {stage!r}; .chalice/config.json has {', '.join(config['stages'])}"
        )
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }


def apply_stage(stage: str) -> None:
    """Set the stage's variables, keeping any the caller already set."""
    for name, value in stage_environment(stage).items():
        os.environ.setdefault(name, value)
    reload()
