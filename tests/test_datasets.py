"""Tests that read ../shared/datasets get it from one helper: absent, they skip in a fresh clone and fail in CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, datasets_dir


def test_missing_data_sets_skip_with_the_reason_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_TEST_DATASETS", str(tmp_path / "absent"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent is missing"):
        datasets_dir()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have them"):
        datasets_dir()
    monkeypatch.setenv("APPLIANCE_TEST_DATASETS", str(tmp_path))
    assert datasets_dir() == tmp_path


def test_no_test_finds_the_data_sets_by_itself() -> None:
    spelled = re.compile(r"""["']shared["']\s*/\s*["']datasets["']|\.\./shared/datasets["']""")
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")
             if p.name not in ("conftest.py", "test_datasets.py") and spelled.search(p.read_text("utf-8"))]  # fmt: skip
    assert found == [], "take the `datasets` fixture (tests/conftest.py) instead"
