"""Driver vs CUDA requirement."""

import pytest
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_cuda import (
    CudaInputError,
    driver_cuda,
    evaluate,
    min_driver_for,
    required_cuda_from_env,
)


@pytest.mark.parametrize(
    ("cuda", "driver"),
    [
        ("12.0", "525.60.13"),
        ("12.1", "530.30.02"),
        ("12.2", "535.54.03"),
        ("12.3", "545.23.06"),
        ("12.4", "550.54.14"),
        ("12.5", "555.42.02"),
        ("12.6", "560.28.03"),
        ("12.8", "570.26"),
        ("12.9", "575.51.03"),
        ("13.0", "580.65.06"),
        ("12.8.1", "570.26"),
        ("12.7", "570.26"),
    ],
)
def test_min_driver_for(cuda, driver):
    assert min_driver_for(cuda) == driver


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [
        ("550.163.01", "12.4"),
        ("535.247.01", "12.2"),
        ("570.133.07", "12.8"),
        ("590.44.01", "13.0"),
        ("525.147.05", "12.0"),
        ("470.256.02", "11.4"),
        ("440.33", None),
    ],
)
def test_driver_cuda(driver, cuda):
    assert driver_cuda(driver) == cuda


@pytest.mark.parametrize(
    ("driver", "need", "minor", "compatible", "branch"),
    [
        ("550.163.01", "12.8", False, False, "570"),  # Debian 13's driver vs a vLLM 0.9+ image
        ("550.163.01", "12.8", True, True, "570"),  # only under minor-version compatibility
        ("570.133.07", "12.8", False, True, "570"),
        ("535.247.01", "12.4", False, False, "550"),
        ("520.61.05", "12.1", True, False, "530"),  # below the 12.x minor-compat floor
        ("580.65.06", "13.0", False, True, "580"),
    ],
)
def test_evaluate(driver, need, minor, compatible, branch):
    verdict = evaluate(driver, need, allow_minor_version_compat=minor)
    assert verdict.compatible is compatible
    assert verdict.min_branch == branch
    if not compatible:
        assert f"nvidia-driver-{branch}" in verdict.message


@pytest.mark.parametrize(
    ("env", "cuda"),
    [
        (
            [
                "CUDA_VERSION=12.8.1",
                "NVIDIA_REQUIRE_CUDA=cuda>=12.8 brand=tesla,driver>=470,driver<471",
            ],
            "12.8",
        ),
        ({"CUDA_VERSION": "12.4.1"}, "12.4"),
        ({"NVIDIA_REQUIRE_CUDA": "cuda>=12.9"}, "12.9"),
        (["PATH=/usr/bin"], None),
    ],
)
def test_required_cuda_from_env(env, cuda):
    assert required_cuda_from_env(env) == cuda


@pytest.mark.parametrize("bad", ["12.x", "", "14.0"])
def test_bad_versions(bad):
    with pytest.raises(CudaInputError):
        min_driver_for(bad)
