/* STAND-IN for NVIDIA's libcuda.so.1 (unit tests only): the driver API entry points that
 * roles/nvidia_container_toolkit/files/cuda_smoke.py calls, with the signatures of NVIDIA's
 * cuda.h. AW_FAKE_CUDA_DEVICES sets the device count (default 1); AW_FAKE_CUDA_FAIL names a
 * function that returns CUDA_ERROR_OUT_OF_MEMORY (2). The device name is the recorded RTX 4090
 * of tests/fixtures/nvidia-smi/rtx-4090-570-v12.handmade.xml; the driver version is CUDA 12.8. */
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

static int fail(const char *fn) {
    const char *f = getenv("AW_FAKE_CUDA_FAIL");
    return f && strcmp(f, fn) == 0 ? 2 : 0;
}
int cuInit(unsigned int flags) { (void)flags; return fail("cuInit"); }
int cuDriverGetVersion(int *v) { *v = 12080; return fail("cuDriverGetVersion"); }
int cuDeviceGetCount(int *n) { const char *e = getenv("AW_FAKE_CUDA_DEVICES"); *n = e ? atoi(e) : 1; return fail("cuDeviceGetCount"); }
int cuDeviceGet(int *d, int i) { *d = i; return fail("cuDeviceGet"); }
int cuDeviceGetName(char *b, int len, int d) { (void)d; strncpy(b, "NVIDIA GeForce RTX 4090", (size_t)len); return fail("cuDeviceGetName"); }
int cuCtxCreate_v2(void **c, unsigned int f, int d) { (void)f; (void)d; *c = (void *)0x1; return fail("cuCtxCreate_v2"); }
int cuMemAlloc_v2(unsigned long long *p, size_t n) { (void)n; *p = 0x1000; return fail("cuMemAlloc_v2"); }
int cuMemFree_v2(unsigned long long p) { (void)p; return fail("cuMemFree_v2"); }
int cuCtxDestroy_v2(void *c) { (void)c; return fail("cuCtxDestroy_v2"); }
int cuGetErrorName(int rc, const char **s) { *s = rc == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : "CUDA_ERROR_UNKNOWN"; return 0; }
