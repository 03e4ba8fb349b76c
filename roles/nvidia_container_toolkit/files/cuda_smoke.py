#!/usr/bin/env python3
# Copyright: agent-workstation contributors
# SPDX-License-Identifier: Apache-2.0 (see LICENSE at the repository root)
"""GPU smoke test run INSIDE a container: real CUDA driver API calls, not only nvidia-smi.

Loads libcuda.so.1 (mounted by the NVIDIA container runtime), then cuInit, cuDriverGetVersion,
cuDeviceGetCount, cuDeviceGetName, cuCtxCreate, cuMemAlloc (1 MiB, which needs /dev/nvidia-uvm),
cuMemFree, cuCtxDestroy. Prints one JSON object and exits 0 on success, 1 on a CUDA error, 2 when
libcuda cannot be loaded. Standard library only: any image with python3 runs it.
AW_CUDA_LIB names another library (the unit tests' stand-in).
"""

import ctypes
import json
import os
import sys


def main() -> int:
    name = os.environ.get("AW_CUDA_LIB", "libcuda.so.1")
    try:
        cuda = ctypes.CDLL(name)
    except OSError as exc:
        print(json.dumps({"ok": False, "step": "load", "error": f"{name}: {exc}"}))
        return 2
    out: dict = {"ok": False, "library": name}

    def call(step, *args):
        rc = getattr(cuda, step)(*args)
        if rc != 0:
            msg = ctypes.c_char_p()
            named = hasattr(cuda, "cuGetErrorName")
            named = named and cuda.cuGetErrorName(rc, ctypes.byref(msg)) == 0
            err = msg.value.decode() if named and msg.value else f"CUresult {rc}"
            raise RuntimeError(f"{step}: {err}")

    try:
        call("cuInit", 0)
        version = ctypes.c_int()
        call("cuDriverGetVersion", ctypes.byref(version))
        out["cuda_driver_version"] = f"{version.value // 1000}.{version.value % 1000 // 10}"
        count = ctypes.c_int()
        call("cuDeviceGetCount", ctypes.byref(count))
        out["devices"] = []
        for index in range(count.value):
            dev = ctypes.c_int()
            call("cuDeviceGet", ctypes.byref(dev), index)
            buf = ctypes.create_string_buffer(256)
            call("cuDeviceGetName", buf, 256, dev)
            out["devices"].append(buf.value.decode(errors="replace"))
        if count.value < 1:
            raise RuntimeError("cuDeviceGetCount: no CUDA device visible in the container")
        ctx = ctypes.c_void_p()
        dev0 = ctypes.c_int()
        call("cuDeviceGet", ctypes.byref(dev0), 0)
        call("cuCtxCreate_v2", ctypes.byref(ctx), 0, dev0)
        ptr = ctypes.c_uint64()
        call("cuMemAlloc_v2", ctypes.byref(ptr), ctypes.c_size_t(1 << 20))
        call("cuMemFree_v2", ptr)
        call("cuCtxDestroy_v2", ctx)
        out["mem_alloc_mib"] = 1
        out["ok"] = True
    except RuntimeError as exc:
        out["error"] = str(exc)
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
