"""Tests that need a system tool (SLURM, Chromium) are skipped where it is missing, except
in CI: `.ci/run` installs the tools and sets CI, so there a missing tool fails the test."""

import os

import pytest


def requires(available: bool, reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not available and not os.environ.get("CI"), reason=reason)
