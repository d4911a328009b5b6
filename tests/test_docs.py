"""The README's code and the examples run, and the code base is ruff clean."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_python_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def shrink(code):
    # Same calls as the README, on settings small enough for a test run.
    code = code.replace("epochs=10", "epochs=1").replace("epochs=5", "epochs=1")
    code = code.replace("window=100", "window=20").replace("units=(50, 50)", "units=8")
    return code.replace("units=(32, 32)", "units=8")


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_python_blocks_run(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = shrink(readme_python_blocks()[index])
    if "fastgru.interop" in code:
        for name in ("torch", "keras", "onnx", "onnxruntime"):
            pytest.importorskip(name, reason=f"{name} is not installed (fastgru[interop])")
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "__readme__"})


def test_readme_setup_commands_are_what_ci_runs():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- setup-begin -->\n```bash\n(.*?)```\n<!-- setup-end -->", text, re.S)
    assert block, "README.md lost its setup-begin/setup-end block"
    lines = [ln for ln in block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2
    assert "fastgru demo" in lines[0] and "pytest" in lines[1]
    assert "setup-begin" in (ROOT / ".ci" / "run").read_text()


def test_seed_example_script(capsys):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import seed_temperature
    finally:
        sys.path.pop(0)
    seed_temperature.main(["--epochs", "1", "--window", "20"])
    out = capsys.readouterr().out
    assert re.search(r"The predicted temperature for the next day is: -?\d+\.\d\d°C", out)


@pytest.mark.skipif(shutil.which("ruff") is None and not Path(sys.executable).with_name("ruff")
                    .exists(), reason="ruff is not installed (pip install '.[test]')")  # fmt: skip
def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    res = subprocess.run([ruff, "check", "fastgru", "tests", "benchmarks", "examples"], cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
