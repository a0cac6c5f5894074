"""The shape of the code itself: no import cycles, small modules, optional extras
optional. Cheap checks that fail the build when the house gets crowded again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "stalwart"
# Modules allowed past ~400 lines, with the reason.
LARGE = {
    "bench.py": "the capacity-planning command: sweep, measure, render; one flow",
}


def test_no_import_cycles_even_through_type_annotations() -> None:
    script = ROOT / "scripts" / "import_graph.py"
    done = subprocess.run(
        [sys.executable, str(script), "--typing"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 cycle(s)" in done.stdout


def test_modules_stay_small() -> None:
    big = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 420 and p.name not in LARGE
    }
    assert big == {}, f"split these modules (or say why in LARGE): {big}"


def test_the_core_imports_no_optional_extra() -> None:
    code = (
        "import sys, stalwart, stalwart.processes.supervisor, stalwart.testing, stalwart.cli; "
        "extras = ('starlette', 'uvicorn', 'jinja2', 'django', 'prometheus_client', "
        "'opentelemetry', 'flask'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in extras))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
