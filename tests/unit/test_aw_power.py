"""PSU budget model."""

import pytest
from ansible_collections.agent_workstation.aw.plugins.module_utils.aw_power import (
    PowerInputError,
    gpu_limits_from_gpus,
    plan_power,
)

CASES = [
    # the stated floor: one 4090 on 1000 W passes with 100 W headroom
    (1000, [450], 170, 100, True, 720, 900, 450),
    # 850 W is too small for a 4090: the peak (900) and the sustained cap (680) both fail;
    # min((850-270)/1.4, 680-270) = 410
    (850, [450], 170, 100, False, 720, 900, 410),
    # two 4090s on 1600 W: peak 1260+350 = 1610 > 1600
    (1600, [450, 450], 250, 100, False, 1250, 1610, 446),
    # a capped pair fits
    (1600, [400, 400], 250, 100, True, 1150, 1470, 400),
    # sustained limit binds: 1000 W x 0.8 = 800 < 820 while the peak (1000) fits
    (1000, [450], 270, 100, False, 820, 1000, 430),
]


@pytest.mark.parametrize("case", CASES)
def test_plan_power(case):
    psu, limits, cpu, other, ok, sustained, peak, recommended = case
    budget = plan_power(psu, limits, cpu_tdp_w=cpu, other_w=other)
    assert budget.ok is ok
    assert budget.sustained_w == sustained
    assert budget.peak_w == pytest.approx(peak)
    assert budget.recommended_gpu_power_limit_w == recommended
    assert budget.headroom_w == pytest.approx(psu - peak)
    if not ok:
        assert "Fix:" in budget.message


@pytest.mark.parametrize(
    ("rating", "wall"), [("gold", 800.0), ("titanium", 765.96), ("none", 960.0)]
)
def test_efficiency_changes_wall_draw_not_verdict(rating, wall):
    budget = plan_power(1000, [450], psu_efficiency_rating=rating, cpu_tdp_w=170, other_w=100)
    assert budget.ok is True
    assert budget.wall_sustained_w == pytest.approx(wall, abs=0.1)


def test_declared_transient_tolerance_is_credited():
    common = {"cpu_tdp_w": 170, "other_w": 100, "sustained_load_fraction": 0.9}
    assert plan_power(850, [450], **common).ok is False
    assert plan_power(850, [450], transient_tolerance=1.1, **common).ok is True


def test_limits_from_nvidia_gpu_result():
    gpus = [
        {"index": 0, "power_limit_w": 450.0},
        {"index": 1, "power_limit_w": None, "power_max_limit_w": 300.0},
    ]
    assert gpu_limits_from_gpus(gpus) == [450.0, 300.0]
    with pytest.raises(PowerInputError, match="gpu_power_limits_w"):
        gpu_limits_from_gpus([{"index": 0, "name": "GTX", "power_limit_w": None}])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"psu_efficiency_rating": "diamond"},
        {"transient_factor": 0.5},
        {"sustained_load_fraction": 1.5},
        {"transient_tolerance": 0.9},
    ],
)
def test_bad_inputs(kwargs):
    with pytest.raises(PowerInputError):
        plan_power(1000, [450], **kwargs)
