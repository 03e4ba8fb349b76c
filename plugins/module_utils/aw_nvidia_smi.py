# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""Pure parsing of ``nvidia-smi -q -x`` output and of its failure messages.

No I/O here: the module runs the command and hands stdout/stderr/rc to these functions.

The XML schema (DTD) changed across driver generations:

* up to ~525 (``nvsmi_device_v10/v11/v12.dtd``): ``<power_readings>`` with ``power_draw``,
  ``power_limit``, ``enforced_power_limit``, ``max_power_limit``;
* 535 (v12): ``<gpu_power_readings>`` (+ ``module_power_readings``) with ``power_draw``,
  ``current_power_limit`` (the enforced one), ``max_power_limit``;
* 570+ (v12) and 590+ (v13): ``power_draw`` is gone; ``average_power_draw`` and
  ``instant_power_draw`` replace it, and the average may read ``N/A``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any

# Values nvidia-smi prints when a field has no number.
_NO_VALUE = (
    "n/a",
    "[n/a]",
    "not supported",
    "[not supported]",
    "unknown error",
    "[unknown error]",
    "requested functionality has been deprecated",
    "insufficient permissions",
    "[insufficient permissions]",
    "",
)
_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)")

# Problem codes (machine readable) shared with the module and the preflight report.
NVIDIA_SMI_MISSING = "nvidia_smi_missing"
DRIVER_NOT_LOADED = "driver_not_loaded"
DRIVER_LIBRARY_MISMATCH = "driver_library_mismatch"
NVIDIA_SMI_FAILED = "nvidia_smi_failed"
BAD_XML = "bad_xml"
NO_GPU = "no_gpu"
CHECK_FAILED = "check_failed"


class NvidiaSmiParseError(ValueError):
    """The text is not the XML that ``nvidia-smi -q -x`` prints."""


@dataclass
class Gpu:
    index: int
    name: str | None
    uuid: str | None
    pci_bus_id: str | None
    memory_total_mib: int | None
    driver_version: str | None
    cuda_version: str | None
    power_limit_w: float | None
    power_default_limit_w: float | None
    power_max_limit_w: float | None
    power_draw_w: float | None
    power_draw_source: str | None
    temperature_c: float | None
    persistence_mode: bool | None


@dataclass
class NvidiaSmiReport:
    driver_version: str | None
    cuda_version: str | None
    count: int
    gpus: list[Gpu] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_quantity(text: str | None) -> float | None:
    """Return the number at the start of an nvidia-smi value, or None.

    >>> parse_quantity("450.00 W"), parse_quantity("24564 MiB"), parse_quantity("[N/A]")
    (450.0, 24564.0, None)
    """
    if text is None:
        return None
    cleaned = text.strip()
    if cleaned.lower() in _NO_VALUE:
        return None
    match = _NUMBER.match(cleaned)
    if not match:
        return None
    return float(match.group(1))


def _text(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value or None


def _first_quantity(gpu: ET.Element, candidates: list[tuple[str, str]]) -> tuple[float | None, str]:
    """First numeric value among (block, field) candidates, with the path it came from."""
    for block, name in candidates:
        value = parse_quantity(_text(gpu, f"{block}/{name}"))
        if value is not None:
            return value, f"{block}/{name}"
    return None, ""


_POWER_BLOCKS = ("gpu_power_readings", "power_readings")
_DRAW_CANDIDATES = [
    (block, name)
    for name in ("average_power_draw", "instant_power_draw", "power_draw")
    for block in _POWER_BLOCKS
]
# The enforced limit: old drivers print enforced_power_limit (power_limit is the requested
# one), 535+ prints current_power_limit.
_LIMIT_CANDIDATES = [
    ("power_readings", "enforced_power_limit"),
    ("gpu_power_readings", "current_power_limit"),
    ("gpu_power_readings", "enforced_power_limit"),
    ("power_readings", "power_limit"),
    ("power_readings", "current_power_limit"),
]
_MAX_CANDIDATES = [(b, "max_power_limit") for b in _POWER_BLOCKS]
_DEFAULT_CANDIDATES = [(b, "default_power_limit") for b in _POWER_BLOCKS]


def _persistence(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered == "enabled":
        return True
    if lowered == "disabled":
        return False
    return None


def parse_nvidia_smi_xml(xml_text: str) -> NvidiaSmiReport:
    """Parse the whole ``nvidia-smi -q -x`` document (every DTD generation)."""
    if not xml_text or not xml_text.strip():
        raise NvidiaSmiParseError("nvidia-smi printed nothing on stdout")
    try:
        root = ET.fromstring(xml_text.strip())
    except ET.ParseError as exc:
        raise NvidiaSmiParseError(f"nvidia-smi output is not well-formed XML ({exc})") from exc
    if root.tag != "nvidia_smi_log":
        raise NvidiaSmiParseError(
            f"expected an <nvidia_smi_log> document, got <{root.tag}>: is this nvidia-smi -q -x?"
        )
    driver = _text(root, "driver_version")
    cuda = _text(root, "cuda_version")
    if cuda is not None and parse_quantity(cuda) is None:
        cuda = None
    gpus: list[Gpu] = []
    for index, node in enumerate(root.findall("gpu")):
        draw, draw_source = _first_quantity(node, _DRAW_CANDIDATES)
        limit, _ = _first_quantity(node, _LIMIT_CANDIDATES)
        max_limit, _ = _first_quantity(node, _MAX_CANDIDATES)
        default_limit, _ = _first_quantity(node, _DEFAULT_CANDIDATES)
        memory = parse_quantity(_text(node, "fb_memory_usage/total"))
        gpus.append(
            Gpu(
                index=index,
                name=_text(node, "product_name"),
                uuid=_text(node, "uuid"),
                pci_bus_id=node.get("id") or _text(node, "pci/pci_bus_id"),
                memory_total_mib=int(memory) if memory is not None else None,
                driver_version=driver,
                cuda_version=cuda,
                power_limit_w=limit,
                power_default_limit_w=default_limit,
                power_max_limit_w=max_limit,
                power_draw_w=draw,
                power_draw_source=draw_source or None,
                temperature_c=parse_quantity(_text(node, "temperature/gpu_temp")),
                persistence_mode=_persistence(_text(node, "persistence_mode")),
            )
        )
    return NvidiaSmiReport(driver_version=driver, cuda_version=cuda, count=len(gpus), gpus=gpus)


_FIX_MISMATCH = (
    "the loaded kernel module and the user-space NVIDIA libraries differ (usually a "
    "libnvidia-* upgrade under a running driver). Reboot to load the matching module, or "
    "reinstall the same driver version for both; then hold every NVIDIA package "
    "(dpkg_selections: hold) and keep unattended-upgrades off nvidia-*/libnvidia-*."
)
_FIX_NOT_LOADED = (
    "the NVIDIA kernel module is not loaded. Check `lsmod | grep nvidia` and "
    "`dmesg | grep -i nvidia`; install the driver (nvidia-driver-<branch> or "
    "cuda-drivers-<branch>), make sure Secure Boot signing/DKMS built the module for the "
    "running kernel, and reboot."
)


def classify_failure(rc: int, stdout: str, stderr: str) -> tuple[str, str] | None:
    """Map a failed nvidia-smi run to (problem code, readable message); None if rc == 0."""
    if rc == 0:
        return None
    text = f"{stdout}\n{stderr}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "").rstrip(".")
    lowered = text.lower()
    if "driver/library version mismatch" in lowered:
        return DRIVER_LIBRARY_MISMATCH, f"nvidia-smi: {first}. Fix: {_FIX_MISMATCH}"
    if "couldn't communicate with the nvidia driver" in lowered or (
        "no devices were found" in lowered
    ):
        return DRIVER_NOT_LOADED, f"nvidia-smi: {first}. Fix: {_FIX_NOT_LOADED}"
    return (
        NVIDIA_SMI_FAILED,
        f"nvidia-smi exited with {rc}: {first or '(no output)'}. Run `nvidia-smi -q -x` by "
        "hand to see the whole error.",
    )


def missing_binary_message(binary: str) -> str:
    return (
        f"`{binary}` was not found on PATH. Install the NVIDIA driver utilities "
        "(Debian: nvidia-smi from non-free; Ubuntu: nvidia-utils-<branch>[-server]) or set "
        "the nvidia_smi option (preflight_nvidia_smi) to its full path. On a machine with no "
        "GPU, set preflight_allow_no_gpu: true to only report."
    )


def driver_matches(actual: str | None, expected: str) -> bool:
    """Exact version ("550.163.01") or a branch ("550") match."""
    if actual is None:
        return False
    expected = str(expected).strip()
    if "." in expected:
        return actual.strip() == expected
    return actual.strip().split(".")[0] == expected


def gpu_list(report: NvidiaSmiReport) -> str:
    """`0: NVIDIA GeForce RTX 4090 (24564 MiB), 1: ...` for messages."""
    return ", ".join(
        f"{gpu.index}: {gpu.name} ({gpu.memory_total_mib or '?'} MiB)" for gpu in report.gpus
    )


def select_gpus(report: NvidiaSmiReport, gpu_index: int | None) -> tuple[list[Gpu], str | None]:
    """The GPUs the stack uses: all of them (gpu_index None) or the one with that index.

    Returns (selected, problem); an index nvidia-smi does not list selects nothing and says
    which indexes exist. The index is nvidia-smi's (`nvidia-smi -L`), which is also what
    Docker's device_ids and CUDA_VISIBLE_DEVICES count by (both use the NVML/PCI bus order).
    """
    if gpu_index is None:
        return list(report.gpus), None
    chosen = [gpu for gpu in report.gpus if gpu.index == gpu_index]
    if chosen:
        return chosen, None
    known = [str(gpu.index) for gpu in report.gpus]
    return [], (
        f"gpu_index (preflight_gpu_index) is {gpu_index}, but nvidia-smi lists no GPU {gpu_index}; "
        f"this machine has {gpu_list(report) or 'no GPU'}. Fix: set preflight_gpu_index to "
        f"{' or '.join(known) + ', or ' if known else ''}null (plan on every GPU)."
    )


def check_report(
    report: NvidiaSmiReport,
    min_memory_mib: int | None = None,
    min_count: int | None = None,
    expected_driver_version: str | None = None,
    max_temperature_c: float | None = None,
    *,
    gpu_index: int | None = None,
) -> list[str]:
    """Return one readable message per failed check (empty list: all passed).

    Every GPU is checked, or with gpu_index only the chosen one (a small display card next
    to the chosen one is not held to min_memory_mib); min_count counts every GPU.
    """
    failures: list[str] = []
    selected, problem = select_gpus(report, gpu_index)
    if problem:
        failures.append(problem)
    if min_count is not None and report.count < min_count:
        failures.append(
            f"found {report.count} GPU(s), need at least {min_count} (min_count). Check that "
            "every card is seated and powered and that `nvidia-smi -L` lists it."
        )
    if expected_driver_version and not driver_matches(
        report.driver_version, expected_driver_version
    ):
        failures.append(
            f"driver {report.driver_version} does not match the pinned "
            f"{expected_driver_version!r} (expected_driver_version). Install that branch or "
            "update the pin in the inventory."
        )
    for gpu in selected:
        label = f"GPU {gpu.index} ({gpu.name})"
        if min_memory_mib is not None:
            if gpu.memory_total_mib is None:
                failures.append(f"{label}: total memory is not reported by nvidia-smi.")
            elif gpu.memory_total_mib < min_memory_mib:
                failures.append(
                    f"{label}: {gpu.memory_total_mib} MiB of memory, need at least "
                    f"{min_memory_mib} MiB (min_memory_mib)."
                )
        if (
            max_temperature_c is not None
            and gpu.temperature_c is not None
            and gpu.temperature_c > max_temperature_c
        ):
            failures.append(
                f"{label}: {gpu.temperature_c:g} C, above max_temperature_c "
                f"{max_temperature_c:g} C. Check airflow and fans before loading a model."
            )
    return failures


NVIDIA_PCI_VENDOR = "0x10de"


def nvidia_pci_gpus(devices: list[tuple[str, str, str]]) -> list[dict[str, str]]:
    """NVIDIA display controllers among PCI devices given as (slot, vendor, class) from sysfs.

    A GPU is vendor 0x10de with a display class (0x03xxxx: VGA or 3D controller); the
    card's HDMI audio function (0x0403xx) is not one. This tells "no NVIDIA GPU in this
    machine" from "a GPU whose driver is not installed yet" when nvidia-smi cannot answer.
    """
    gpus = []
    for slot, vendor, pci_class in devices:
        if vendor.strip().lower() == NVIDIA_PCI_VENDOR and pci_class.strip().lower().startswith(
            "0x03"
        ):
            gpus.append({"slot": slot, "class": pci_class.strip().lower()})
    return sorted(gpus, key=lambda gpu: gpu["slot"])
