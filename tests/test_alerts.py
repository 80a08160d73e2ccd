"""The alert rules pgferry ships, checked and unit-tested by promtool (Debian's prometheus package):
every alert with a firing and a not-firing case, a gap in a series, and an idle primary that must not
look like replica lag (tests/alerts/pgferry.rules.test.yml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "src" / "pgferry" / "prometheus" / "pgferry.rules.yml"
TESTS = ROOT / "tests" / "alerts" / "pgferry.rules.test.yml"
PROMTOOL = shutil.which("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool comes with Debian's prometheus package (scripts/setup.sh installs it)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("command", [("check", "rules", str(RULES)), ("test", "rules", str(TESTS))])
def test_promtool_accepts_the_rules_and_their_tests_pass(command: tuple[str, ...]) -> None:
    done = promtool(*command)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = [line.split(":", 1)[1].strip() for line in RULES.read_text().splitlines() if "- alert:" in line]
    cases = TESTS.read_text()
    for alert in alerts:
        assert f"alertname: {alert}\n        exp_alerts: []" in cases, f"{alert}: no case where it stays quiet"
        assert f"alertname: {alert}\n        exp_alerts:\n" in cases, f"{alert}: no case where it fires"
