# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""A deliberately simple power-supply budget for a GPU workstation.

Model (all DC watts, what the PSU must deliver on its outputs):

* ``sustained_w = sum(gpu power limits) + cpu_tdp_w + other_w``
* ``peak_w = sum(gpu power limit x transient_factor) + cpu_tdp_w + other_w``
* the PSU passes when ``peak_w <= psu_watts x transient_tolerance`` and
  ``sustained_w <= psu_watts x sustained_load_fraction``.

The default ``transient_factor`` of 1.4 covers an RTX 4090: 450 W board limit, transients
of 600 W+ lasting milliseconds (450 x 1.4 = 630 W). ``transient_tolerance`` defaults to 1.0:
the PSU is trusted only up to its label for those spikes. ATX 3.x PSUs are specified to ride
through short excursions above their rating, but the exact envelope is not something this
project could source, so any credit for it must be declared explicitly.

The 80 PLUS rating does not change DC capacity (a 1000 W unit delivers 1000 W whatever its
efficiency); it only changes what is drawn from the wall. It is used for ``wall_sustained_w``
and ``wall_peak_w`` (informational: circuit/UPS sizing), never for the pass/fail decision.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# Efficiency at 50 % load, 115 V internal (the 80 PLUS levels' headline points);
# "none" is an assumption for an unrated unit.
EFFICIENCY_AT_50_PERCENT: dict[str, float] = {
    "none": 0.75,
    "white": 0.80,
    "bronze": 0.85,
    "silver": 0.88,
    "gold": 0.90,
    "platinum": 0.92,
    "titanium": 0.94,
}

DEFAULT_TRANSIENT_FACTOR = 1.4
DEFAULT_SUSTAINED_LOAD_FRACTION = 0.8
DEFAULT_TRANSIENT_TOLERANCE = 1.0


class PowerInputError(ValueError):
    """An input is missing or out of range."""


@dataclass
class PowerBudget:
    psu_watts: float
    psu_efficiency_rating: str
    efficiency: float
    gpu_power_limits_w: list[float]
    transient_factor: float
    cpu_tdp_w: float
    other_w: float
    sustained_w: float
    peak_w: float
    sustained_capacity_w: float
    peak_capacity_w: float
    headroom_w: float
    sustained_headroom_w: float
    wall_sustained_w: float
    wall_peak_w: float
    recommended_gpu_power_limit_w: int | None
    ok: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_limits_from_gpus(gpus: list[dict[str, Any]]) -> list[float]:
    """Power limits from ``nvidia_gpu``'s ``gpus`` (enforced limit, else the maximum)."""
    limits: list[float] = []
    for gpu in gpus:
        value = gpu.get("power_limit_w")
        if value is None:
            value = gpu.get("power_max_limit_w")
        if value is None:
            raise PowerInputError(
                f"GPU {gpu.get('index')} ({gpu.get('name')}) reports no power limit; "
                "pass gpu_power_limits_w explicitly."
            )
        limits.append(float(value))
    return limits


def plan_power(
    psu_watts: float,
    gpu_power_limits_w: list[float],
    *,
    psu_efficiency_rating: str = "gold",
    cpu_tdp_w: float = 0.0,
    other_w: float = 0.0,
    transient_factor: float = DEFAULT_TRANSIENT_FACTOR,
    sustained_load_fraction: float = DEFAULT_SUSTAINED_LOAD_FRACTION,
    transient_tolerance: float = DEFAULT_TRANSIENT_TOLERANCE,
) -> PowerBudget:
    rating = str(psu_efficiency_rating).lower()
    if rating not in EFFICIENCY_AT_50_PERCENT:
        raise PowerInputError(
            f"psu_efficiency_rating {psu_efficiency_rating!r} is not one of "
            f"{', '.join(EFFICIENCY_AT_50_PERCENT)}."
        )
    if psu_watts <= 0:
        raise PowerInputError(f"psu_watts must be positive, got {psu_watts}.")
    if transient_factor < 1:
        raise PowerInputError(f"transient_factor must be >= 1, got {transient_factor}.")
    if not 0 < sustained_load_fraction <= 1:
        raise PowerInputError("sustained_load_fraction must be in (0, 1].")
    if transient_tolerance < 1:
        raise PowerInputError("transient_tolerance must be >= 1.")
    limits = [float(x) for x in gpu_power_limits_w]
    if any(x < 0 for x in limits):
        raise PowerInputError(f"gpu power limits must be >= 0, got {limits}.")
    efficiency = EFFICIENCY_AT_50_PERCENT[rating]
    base = float(cpu_tdp_w) + float(other_w)
    sustained = sum(limits) + base
    peak = sum(x * transient_factor for x in limits) + base
    peak_capacity = psu_watts * transient_tolerance
    sustained_capacity = psu_watts * sustained_load_fraction
    ok = peak <= peak_capacity and sustained <= sustained_capacity

    recommended: int | None = None
    if limits:
        n = len(limits)
        by_peak = (peak_capacity - base) / (n * transient_factor)
        by_sustained = (sustained_capacity - base) / n
        fitting = max(0, math.floor(min(by_peak, by_sustained)))
        recommended = min(fitting, math.floor(max(limits)))

    if ok:
        message = (
            f"PSU {psu_watts:g} W covers a {peak:.0f} W peak ({peak_capacity - peak:.0f} W "
            f"headroom) and {sustained:.0f} W sustained."
        )
    else:
        reasons = []
        if peak > peak_capacity:
            reasons.append(
                f"the estimated peak {peak:.0f} W (GPU limits {limits} W x {transient_factor:g} "
                f"transients + CPU {cpu_tdp_w:g} W + other {other_w:g} W) exceeds the "
                f"{peak_capacity:.0f} W the PSU is trusted to deliver"
            )
        if sustained > sustained_capacity:
            reasons.append(
                f"the sustained {sustained:.0f} W exceeds {sustained_load_fraction:.0%} of "
                f"{psu_watts:g} W ({sustained_capacity:.0f} W)"
            )
        fix = (
            f"cap each GPU at {recommended} W (`nvidia-smi -pl {recommended}`, or the "
            "nvidia role's power-limit variable)"
            if recommended
            else "the CPU and other loads alone exceed the budget"
        )
        message = f"{'; '.join(reasons)}. Fix: {fix}, or fit a larger PSU."
    return PowerBudget(
        psu_watts=float(psu_watts),
        psu_efficiency_rating=rating,
        efficiency=efficiency,
        gpu_power_limits_w=limits,
        transient_factor=float(transient_factor),
        cpu_tdp_w=float(cpu_tdp_w),
        other_w=float(other_w),
        sustained_w=round(sustained, 1),
        peak_w=round(peak, 1),
        sustained_capacity_w=round(sustained_capacity, 1),
        peak_capacity_w=round(peak_capacity, 1),
        headroom_w=round(peak_capacity - peak, 1),
        sustained_headroom_w=round(sustained_capacity - sustained, 1),
        wall_sustained_w=round(sustained / efficiency, 1),
        wall_peak_w=round(peak / efficiency, 1),
        recommended_gpu_power_limit_w=recommended,
        ok=ok,
        message=message,
    )
