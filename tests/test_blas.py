"""--mlx-blas: OpenBLAS under MLX, chosen before MLX loads, or one clear error."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.backends.mlx import blas

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--mlx-blas is for Linux")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_bundled_needs_nothing():
    assert blas.select_mlx_blas("bundled") is None


@linux_only
def test_refused_once_mlx_is_loaded():
    import mlx.core  # noqa: F401  (this test process has MLX loaded already)

    with pytest.raises(blas.BlasError, match="imported before"):
        blas.select_mlx_blas("openblas")


@linux_only
def test_missing_openblas_names_the_install_command(monkeypatch):
    monkeypatch.setattr(blas, "OPENBLAS_CANDIDATES", ("/nonexistent/libblas.so.3",))
    monkeypatch.setattr(blas.ctypes.util, "find_library", lambda name: None)
    monkeypatch.delitem(sys.modules, "mlx.core", raising=False)
    with pytest.raises(blas.BlasError) as info:
        blas.select_mlx_blas("openblas")
    assert blas.INSTALL_HINT in str(info.value) and "\n" not in str(info.value)


@linux_only
def test_pytest_option_fails_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--mlx-blas", "/nonexistent/libblas.so", "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4
    assert "ERROR: --mlx-blas: /nonexistent/libblas.so does not exist" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@linux_only
@pytest.mark.skipif(
    blas.find_openblas() is None, reason=f"no system OpenBLAS ({blas.INSTALL_HINT}; .ci/run installs it)"
)
def test_openblas_is_what_mlx_then_calls():
    result = run_python(
        """
        import json
        from bench.backends.mlx.blas import select_mlx_blas
        path = select_mlx_blas("openblas")
        from bench.backends.mlx.environment import mlx_blas
        print(json.dumps({"path": path, "mlx_blas": mlx_blas()}))
        """
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["mlx_blas"]["library"] == out["path"]
    assert "global scope" in out["mlx_blas"]["source"]


@linux_only
def test_without_the_option_mlx_uses_its_bundled_blas():
    result = run_python(
        """
        import json
        import mlx.core
        from bench.backends.mlx.environment import mlx_blas
        print(json.dumps(mlx_blas()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "bundled" in json.loads(result.stdout)["source"]
