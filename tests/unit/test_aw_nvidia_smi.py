"""nvidia-smi -q -x parsing over recorded captures (tests/fixtures/nvidia-smi/README.md)."""

import dataclasses
from pathlib import Path

import pytest
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_nvidia_smi import (
    DRIVER_LIBRARY_MISMATCH,
    DRIVER_NOT_LOADED,
    NVIDIA_SMI_FAILED,
    NvidiaSmiParseError,
    check_report,
    classify_failure,
    driver_matches,
    nvidia_pci_gpus,
    parse_nvidia_smi_xml,
    parse_quantity,
    select_gpus,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SMI = FIXTURES / "nvidia-smi"


def load(name):
    return parse_nvidia_smi_xml((SMI / name).read_text())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("450.00 W", 450.0),
        ("24564 MiB", 24564.0),
        ("38 C", 38.0),
        ("-7 C", -7.0),
        ("N/A", None),
        ("[N/A]", None),
        ("Not Supported", None),
        ("[Not Supported]", None),
        ("Requested functionality has been deprecated", None),
        ("", None),
        (None, None),
        ("Enabled", None),
    ],
)
def test_parse_quantity(text, expected):
    assert parse_quantity(text) == expected


# file, driver, cuda, name, memory MiB, enforced limit, max limit, draw, draw source, temp,
# persistence
CAPTURES = [
    (
        "tesla-t4-515-v11.xml",
        "515.105.01",
        "11.7",
        "Tesla T4",
        15360,
        70.0,
        70.0,
        26.78,
        "power_readings/power_draw",
        40.0,
        False,
    ),
    # enforced limit 200 W below the 350 W default: the enforced one must win
    (
        "rtx-3090-525-v12.xml",
        "525.147.05",
        "12.0",
        "NVIDIA GeForce RTX 3090",
        24576,
        200.0,
        375.0,
        27.23,
        "power_readings/power_draw",
        37.0,
        True,
    ),
    (
        "rtx-3080-536-v12.xml",
        "536.40",
        "12.2",
        "NVIDIA GeForce RTX 3080",
        10240,
        336.0,
        336.0,
        22.78,
        "gpu_power_readings/power_draw",
        31.0,
        None,
    ),
    (
        "rtx-4000-sff-ada-595-v13.xml",
        "595.84",
        "13.2",
        "NVIDIA RTX 4000 SFF Ada Generation",
        20475,
        70.0,
        70.0,
        8.81,
        "gpu_power_readings/average_power_draw",
        38.0,
        True,
    ),
    # a REAL capture of this project's own (tests/device/gpu-check.sh on an H200, 2026-12-04)
    (
        "h200-580-v13.xml",
        "580.159.04",
        "13.0",
        "NVIDIA H200",
        143771,
        700.0,
        700.0,
        80.07,  # this file; the preflight read 78.28 W in a later run (recorded/preflight.txt)
        "gpu_power_readings/average_power_draw",
        41.0,
        True,
    ),
    # average N/A -> falls back to instant
    (
        "rtx-4090-570-v12.handmade.xml",
        "570.133.07",
        "12.8",
        "NVIDIA GeForce RTX 4090",
        24564,
        450.0,
        600.0,
        31.27,
        "gpu_power_readings/instant_power_draw",
        15.0,
        True,
    ),
    # upstream-trimmed capture: no driver, power N/A
    (
        "gtx-1070-ti-v10.xml",
        None,
        None,
        "GeForce GTX 1070 Ti",
        4096,
        None,
        None,
        None,
        None,
        39.0,
        None,
    ),
]


@pytest.mark.parametrize("case", CAPTURES, ids=[c[0] for c in CAPTURES])
def test_single_gpu_captures(case):
    name, driver, cuda, product, mem, limit, max_limit, draw, source, temp, persist = case
    report = load(name)
    assert report.count == 1
    assert report.driver_version == driver
    assert report.cuda_version == cuda
    gpu = report.gpus[0]
    assert gpu.index == 0
    assert gpu.name == product
    assert gpu.memory_total_mib == mem
    assert gpu.power_limit_w == limit
    assert gpu.power_max_limit_w == max_limit
    assert gpu.power_draw_w == draw
    assert gpu.power_draw_source == source
    assert gpu.temperature_c == temp
    assert gpu.persistence_mode is persist
    assert gpu.driver_version == driver


def test_two_gpus_keep_order_and_values():
    report = load("dual-a5000-590-v13.xml")
    assert report.count == 2
    assert [g.index for g in report.gpus] == [0, 1]
    assert [g.pci_bus_id for g in report.gpus] == ["00000000:81:00.0", "00000000:C1:00.0"]
    assert [g.uuid[-2:] for g in report.gpus] == ["ab", "cd"]
    assert [g.power_draw_w for g in report.gpus] == [6.41, 13.60]
    assert [g.temperature_c for g in report.gpus] == [13.0, 15.0]
    assert all(g.power_limit_w == 230.0 for g in report.gpus)


@pytest.mark.parametrize(
    "text",
    [
        (SMI / "truncated.handmade.xml").read_text(),
        "",
        "   \n",
        "<html><body>not nvidia</body></html>",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
    ],
)
def test_bad_xml_raises_readable_error(text):
    with pytest.raises(NvidiaSmiParseError) as info:
        parse_nvidia_smi_xml(text)
    assert "nvidia-smi" in str(info.value) or "nvidia_smi_log" in str(info.value)


@pytest.mark.parametrize(
    ("rc", "out", "problem", "needle"),
    [
        (
            9,
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.\n",
            DRIVER_NOT_LOADED,
            "kernel module",
        ),
        (
            18,
            "Failed to initialize NVML: Driver/library version mismatch\n"
            "NVML library version: 550.163\n",
            DRIVER_LIBRARY_MISMATCH,
            "Reboot",
        ),
        (6, "No devices were found\n", DRIVER_NOT_LOADED, "lsmod"),
        (255, "Unknown Error\n", NVIDIA_SMI_FAILED, "exited with 255"),
    ],
)
def test_classify_failure(rc, out, problem, needle):
    code, message = classify_failure(rc, out, "")
    assert code == problem
    assert needle in message


def test_classify_success_is_none():
    assert classify_failure(0, "<nvidia_smi_log/>", "") is None


@pytest.mark.parametrize(
    ("actual", "expected", "ok"),
    [
        ("550.163.01", "550", True),
        ("550.163.01", "550.163.01", True),
        ("550.163.01", "550.163", False),
        ("570.133.07", "550", False),
        ("5500.1", "550", False),
        (None, "550", False),
    ],
)
def test_driver_matches(actual, expected, ok):
    assert driver_matches(actual, expected) is ok


def test_checks_report_every_failure():
    report = load("rtx-3080-536-v12.xml")
    failures = check_report(
        report,
        min_memory_mib=22000,
        min_count=2,
        expected_driver_version="550",
        max_temperature_c=30,
    )
    assert len(failures) == 4
    joined = " ".join(failures)
    assert "10240 MiB" in joined and "found 1 GPU" in joined and "536.40" in joined
    assert "31 C" in joined


def test_checks_pass_on_a_4090():
    report = load("rtx-4090-570-v12.handmade.xml")
    assert check_report(report, 22000, 1, "570", 85) == []


def mixed_report():
    """A GTX 1070 Ti (the capture says 4096 MiB; a display card) at index 0, the RTX 4090 at 1."""
    small = load("gtx-1070-ti-v10.xml").gpus[0]
    big = dataclasses.replace(load("rtx-4090-570-v12.handmade.xml").gpus[0], index=1)
    return dataclasses.replace(load("rtx-4090-570-v12.handmade.xml"), count=2, gpus=[small, big])


def test_every_gpu_is_checked_without_an_index():
    report = mixed_report()
    selected, problem = select_gpus(report, None)
    assert [g.index for g in selected] == [0, 1] and problem is None
    failures = check_report(report, min_memory_mib=22000, min_count=1)
    assert len(failures) == 1 and failures[0].startswith("GPU 0 (") and "4096 MiB" in failures[0]


def test_an_index_chooses_one_gpu_and_only_it_is_held_to_the_floors():
    report = mixed_report()
    selected, problem = select_gpus(report, 1)
    assert problem is None and [(g.index, g.memory_total_mib) for g in selected] == [(1, 24564)]
    assert check_report(report, min_memory_mib=22000, min_count=2, gpu_index=1) == []
    # The small card alone fails the floor; min_count still counts both cards.
    assert len(check_report(report, min_memory_mib=22000, min_count=2, gpu_index=0)) == 1
    assert "found 2 GPU" in " ".join(check_report(report, min_count=3, gpu_index=1))


@pytest.mark.parametrize("index", [2, 7])
def test_an_index_that_does_not_exist_lists_the_gpus(index):
    report = mixed_report()
    selected, problem = select_gpus(report, index)
    assert selected == []
    assert f"preflight_gpu_index) is {index}" in problem
    assert "0: GeForce GTX 1070 Ti (4096 MiB), 1: NVIDIA GeForce RTX 4090 (24564 MiB)" in problem
    assert "set preflight_gpu_index to 0 or 1, or null" in problem
    assert problem in check_report(report, min_memory_mib=22000, gpu_index=index)


@pytest.mark.parametrize(
    ("devices", "slots"),
    [
        ([], []),
        ([("0000:00:02.0", "0x8086", "0x030000")], []),  # an Intel iGPU
        ([("0000:01:00.0", "0x10de", "0x030000\n")], ["0000:01:00.0"]),  # VGA controller
        ([("0000:41:00.0", "0x10DE", "0x030200")], ["0000:41:00.0"]),  # 3D controller (headless)
        ([("0000:01:00.1", "0x10de", "0x040300")], []),  # the card's HDMI audio function
        (
            [("0000:02:00.0", "0x10de", "0x030000"), ("0000:01:00.0", "0x10de", "0x030000")],
            ["0000:01:00.0", "0000:02:00.0"],
        ),
    ],
)
def test_nvidia_pci_gpus(devices, slots):
    assert [gpu["slot"] for gpu in nvidia_pci_gpus(devices)] == slots
