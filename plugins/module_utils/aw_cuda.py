# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""CUDA toolkit version vs NVIDIA driver version (Linux x86_64).

``MIN_DRIVER`` is NVIDIA's "CUDA Toolkit and Corresponding Driver Versions" table from the
CUDA Toolkit release notes (minimum driver for *full* compatibility, GA release of each
toolkit). CUDA minor-version compatibility lets an application built with 12.x run on any
driver >= 525.60.13 (11.x on >= 450.80.02) with limits (no new-driver features, PTX JIT
may fail); a container that ships CUDA 12.8 kernels compiled for new GPUs often needs the
full-compat driver in practice, so that minimum is the default answer here.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# (CUDA major.minor, minimum Linux x86_64 driver for full compatibility)
MIN_DRIVER: list[tuple[str, str]] = [
    ("11.0", "450.36.06"),
    ("11.1", "455.23.04"),
    ("11.2", "460.27.03"),
    ("11.3", "465.19.01"),
    ("11.4", "470.42.01"),
    ("11.5", "495.29.05"),
    ("11.6", "510.39.01"),
    ("11.7", "515.43.04"),
    ("11.8", "520.61.05"),
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
]
# Minor-version compatibility floors per CUDA major version.
MINOR_COMPAT_DRIVER: dict[int, str] = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}

_REQUIRE = re.compile(r"cuda\s*>=\s*(\d+\.\d+)", re.IGNORECASE)


class CudaInputError(ValueError):
    """A version string cannot be understood."""


def version_tuple(version: str) -> tuple[int, ...]:
    text = str(version).strip()
    if not re.fullmatch(r"\d+(\.\d+)*", text):
        raise CudaInputError(f"{version!r} is not a dotted version number")
    return tuple(int(part) for part in text.split("."))


def major_minor(version: str) -> str:
    parts = version_tuple(version)
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}"


def required_cuda_from_env(env: dict[str, str] | list[str]) -> str | None:
    """CUDA requirement from an image's env/labels: NVIDIA_REQUIRE_CUDA, then CUDA_VERSION."""
    if isinstance(env, list):
        pairs = dict(item.split("=", 1) for item in env if "=" in item)
    else:
        pairs = {str(k): str(v) for k, v in env.items()}
    require = pairs.get("NVIDIA_REQUIRE_CUDA")
    if require:
        match = _REQUIRE.search(require)
        if match:
            return match.group(1)
    cuda_version = pairs.get("CUDA_VERSION")
    if cuda_version:
        return major_minor(cuda_version)
    return None


def min_driver_for(cuda: str) -> str:
    wanted = version_tuple(major_minor(cuda))
    for toolkit, driver in MIN_DRIVER:
        if version_tuple(toolkit) >= wanted:
            return driver
    raise CudaInputError(
        f"CUDA {cuda} is newer than the table in aw_cuda.MIN_DRIVER (last: "
        f"{MIN_DRIVER[-1][0]}); add its row from the CUDA Toolkit release notes."
    )


def driver_cuda(driver_version: str) -> str | None:
    """Highest CUDA toolkit in the table that the driver fully supports."""
    have = version_tuple(driver_version)
    best = None
    for toolkit, driver in MIN_DRIVER:
        if have >= version_tuple(driver):
            best = toolkit
    return best


@dataclass
class CudaVerdict:
    compatible: bool
    required_cuda: str
    driver_version: str
    driver_cuda: str | None
    min_driver_version: str
    min_branch: str
    minor_version_compatible: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    driver_version: str, required_cuda: str, allow_minor_version_compat: bool = False
) -> CudaVerdict:
    required = major_minor(required_cuda)
    minimum = min_driver_for(required)
    have = version_tuple(driver_version)
    full = have >= version_tuple(minimum)
    floor = MINOR_COMPAT_DRIVER.get(version_tuple(required)[0])
    minor_ok = floor is not None and have >= version_tuple(floor)
    compatible = full or (allow_minor_version_compat and minor_ok)
    branch = minimum.split(".")[0]
    supported = driver_cuda(driver_version)
    if full:
        message = f"driver {driver_version} supports CUDA {supported}; the image needs {required}."
    elif compatible:
        message = (
            f"driver {driver_version} is below {minimum} (full CUDA {required} support) but "
            f"within CUDA {version_tuple(required)[0]}.x minor-version compatibility; new "
            "driver features and PTX JIT of newer code may fail."
        )
    else:
        message = (
            f"driver {driver_version} supports CUDA {supported or '< 11.0'} but the image needs "
            f"CUDA {required}, which needs driver >= {minimum}. Fix: install the {branch} "
            f"branch or newer (nvidia-driver-{branch}[-server|-open] / cuda-drivers-{branch}), "
            "or pin an older vLLM image built for your CUDA."
        )
    return CudaVerdict(
        compatible=compatible,
        required_cuda=required,
        driver_version=driver_version,
        driver_cuda=supported,
        min_driver_version=minimum,
        min_branch=branch,
        minor_version_compatible=minor_ok,
        message=message,
    )
