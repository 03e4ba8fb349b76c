"""The in-container GPU smoke script (roles/nvidia_container_toolkit/files/cuda_smoke.py).

No GPU here: the script runs against a STAND-IN libcuda compiled from tests/fakes/libcuda-standin.c
(the driver API entry points the script calls, with cuda.h's signatures). What is real: the
script's ctypes calls, its JSON, its exit codes, and the failure when no libcuda can be loaded
(this machine has none). On a GPU host the same script runs in a container against the real
libcuda that the NVIDIA runtime mounts.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPT = ROOT / "roles" / "nvidia_container_toolkit" / "files" / "cuda_smoke.py"
SOURCE = ROOT / "tests" / "fakes" / "libcuda-standin.c"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to build the libcuda stand-in")
    lib = tmp_path_factory.mktemp("cuda") / "libcuda-standin.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(SOURCE)], check=True)
    return lib


def _run(env):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_success_path(standin):
    rc, out = _run({"AW_CUDA_LIB": str(standin)})
    assert rc == 0 and out["ok"] is True
    assert out["devices"] == ["NVIDIA GeForce RTX 4090"]
    assert out["cuda_driver_version"] == "12.8"
    assert out["mem_alloc_mib"] == 1


def test_no_device(standin):
    rc, out = _run({"AW_CUDA_LIB": str(standin), "AW_FAKE_CUDA_DEVICES": "0"})
    assert rc == 1 and out["ok"] is False
    assert "no CUDA device" in out["error"]


def test_allocation_failure_names_the_cuda_error(standin):
    rc, out = _run({"AW_CUDA_LIB": str(standin), "AW_FAKE_CUDA_FAIL": "cuMemAlloc_v2"})
    assert rc == 1
    assert out["error"] == "cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY"


def test_no_libcuda_is_a_load_failure():
    # Real: this machine has no NVIDIA driver, so libcuda.so.1 cannot be loaded.
    rc, out = _run({"AW_CUDA_LIB": "libcuda.so.1"})
    if rc == 0:
        pytest.skip("this machine has a real libcuda.so.1")
    assert rc == 2 and out["step"] == "load" and "libcuda.so.1" in out["error"]
