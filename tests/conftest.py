"""Hypothesis runs a fixed example sequence in CI (CI=true), so a run there is reproducible;
locally every run draws new examples and keeps looking for bugs."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
