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
# OAuth (authlib), token sealing (the Encryption SDK), validation (pydantic:
# the API's request and answer models with their route's first request, a
# platform's wire models with its first message, the stored documents' codecs
# with the first read; the policies are read as validated at build time).
LOADED_LATER = (
    "pydantic",
    "pydantic_core",
    "requests",
    "charset_normalizer",
    "requests_hardened",
    "standardwebhooks",
    "aws_xray_sdk",
    "jinja2",
    "authlib",
    "aws_encryption_sdk",
)
# The app's own modules that hold pydantic models, and the policies' validation;
# the services of every route, page, schedule and queue consumer but the
# webhook's (app.py imports them on first use), and the modules only they import.
OWN_LOADED_LATER = (
    "chalicelib.service.answers",
    "chalicelib.service.commands",
    "chalicelib.platforms.wire",
    "chalicelib.policies.validate",
    "chalicelib.service.actions",
    "chalicelib.service.changes",
    "chalicelib.service.channel",
    "chalicelib.service.console",
    "chalicelib.service.deliver",
    "chalicelib.service.keys",
    "chalicelib.service.oauth",
    "chalicelib.service.pages",
    "chalicelib.service.policy",
    "chalicelib.service.queries",
    "chalicelib.service.reconcile",
    "chalicelib.service.shops",
    "chalicelib.service.subscriptions",
    "chalicelib.service.sweep",
    "chalicelib.service.tokens",
    "chalicelib.service.fanout",
    "chalicelib.service.platform_actions",
    "chalicelib.integrators",
    "chalicelib.platforms.oauth",
    "chalicelib.store.keys",
    "chalicelib.store.sessions",
    "chalicelib.store.shops",
    "chalicelib.store.vault",
)
LOADED = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"


def test_a_cold_start_does_not_load_what_only_some_calls_need():
    done = subprocess.run(
        [sys.executable, "-c", LOADED],
        cwd=PROJECT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **deployed_environment()},
        capture_output=True,
        text=True,
        check=True,
    )
    modules = set(json.loads(done.stdout))
    loaded = {module.partition(".")[0] for module in modules}
    assert "app" in loaded
    assert loaded.isdisjoint(LOADED_LATER), sorted(loaded & set(LOADED_LATER))
    assert modules.isdisjoint(OWN_LOADED_LATER), sorted(modules & set(OWN_LOADED_LATER))
