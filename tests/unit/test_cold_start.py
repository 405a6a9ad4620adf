"""What a cold start loads: `import app` in a fresh interpreter, in the functions'
own environment, leaves the libraries only some calls need for those calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shophook.stage import deployed_environment

PROJECT = Path(__file__).resolve().parents[2]
# Each is imported where it is used: platform calls (requests), deliveries
# (requests_hardened, standardwebhooks), tracing (X-Ray), pages (jinja2),
# OAuth (authlib), token sealing (the Encryption SDK).
LOADED_LATER = (
    "requests",
    "charset_normalizer",
    "requests_hardened",
    "standardwebhooks",
    "aws_xray_sdk",
    "jinja2",
    "authlib",
    "aws_encryption_sdk",
)
LOADED = (
    "import json, sys, app; print(json.dumps(sorted(m.partition('.')[0] for m in sys.modules)))"
)


def test_a_cold_start_does_not_load_what_only_some_calls_need():
    done = subprocess.run(
        [sys.executable, "-c", LOADED],
        cwd=PROJECT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **deployed_environment()},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(done.stdout))
    assert "app" in loaded
    assert loaded.isdisjoint(LOADED_LATER), sorted(loaded & set(LOADED_LATER))
