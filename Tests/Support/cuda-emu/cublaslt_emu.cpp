// libcublasLt_emu.so: the cuBLASLt calls Tessera's matmul makes, as a plain
// reference GEMM on the emulator's device memory (host memory). It honours
// what the calls describe: column- or row-major layouts with leading
// dimensions, op N/T on either operand, strided batches, float32/float16/
// bfloat16 data with float32 scaling (alpha, beta), and the TF32 compute
// type (inputs rounded to 10-bit mantissas). Products accumulate in double
// and round once to the output type. Operand ranges are checked against the
// emulated driver's allocations (libcuda_emu.so beside this library), so a
// wrong leading dimension or batch stride is reported, not silently read.
// Status codes and attribute numbers are cublasLt.h's.

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "emu_half.h"

namespace {

enum Status : int {
    SUCCESS = 0, NOT_INITIALIZED = 1, ALLOC_FAILED = 3, INVALID_VALUE = 7, EXECUTION_FAILED = 13,
    NOT_SUPPORTED = 15,
};
enum DataType : int { R_32F = 0, R_16F = 2, R_16BF = 14 };
enum ComputeType : int { COMPUTE_16F = 64, COMPUTE_32F = 68, COMPUTE_32F_FAST_16F = 74, COMPUTE_32F_FAST_16BF = 75,
                         COMPUTE_32F_FAST_TF32 = 77 };

struct Handle { int magic = 0x4c54; };
struct MatmulDesc {
    int computeType, scaleType;
    int transA = 0, transB = 0, transC = 0, pointerMode = 0, epilogue = 1;
};
struct Layout {
    int type;
    uint64_t rows, cols;
    int64_t ld;
    int order = 0;  // 0 column-major, 1 row-major
    int batchCount = 1;
    int64_t batchStride = 0;
};
struct Preference { uint64_t maxWorkspace = 0; };

void report(const char* call, const std::string& text) {
    fprintf(stderr, "tessera cublasLt emulator: %s: %s\n", call, text.c_str());
}

size_t typeSize(int type) { return type == R_32F ? 4 : 2; }
bool knownType(int type) { return type == R_32F || type == R_16F || type == R_16BF; }

template <typename T> int setFrom(T& field, const void* buffer, size_t size) {
    if (!buffer || size != sizeof(T)) return INVALID_VALUE;
    memcpy(&field, buffer, sizeof(T));
    return SUCCESS;
}

// libcuda_emu.so's range check, when it is loaded (it is, beside us, under Tessera).
int (*deviceRange)(const void*, size_t, const char*) = nullptr;
void (*deviceAccess)(int) = nullptr;
void findDriver() {
    static bool done = false;
    if (done) return;
    done = true;
    Dl_info info;
    if (!dladdr((void*)&findDriver, &info) || !info.dli_fname) return;
    std::string path = info.dli_fname;
    path = path.substr(0, path.rfind('/') + 1) + "libcuda_emu.so";
    void* driver = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (!driver) return;
    deviceRange = (int (*)(const void*, size_t, const char*))dlsym(driver, "tessera_emu_device_range");
    deviceAccess = (void (*)(int))dlsym(driver, "tessera_emu_device_access");
}

// Element (r, c) of a stored matrix, as a double.
double load(const Layout& l, const char* base, uint64_t r, uint64_t c) {
    uint64_t index = l.order == 0 ? r + c * (uint64_t)l.ld : r * (uint64_t)l.ld + c;
    const char* p = base + index * typeSize(l.type);
    if (l.type == R_32F) { float f; memcpy(&f, p, 4); return f; }
    unsigned short h;
    memcpy(&h, p, 2);
    return l.type == R_16F ? tessera_emu_half::h2f(h) : tessera_emu_half::bf2f(h);
}

void store(const Layout& l, char* base, uint64_t r, uint64_t c, double v) {
    uint64_t index = l.order == 0 ? r + c * (uint64_t)l.ld : r * (uint64_t)l.ld + c;
    char* p = base + index * typeSize(l.type);
    if (l.type == R_32F) { float f = (float)v; memcpy(p, &f, 4); return; }
    unsigned short h = l.type == R_16F ? tessera_emu_half::d2h(v) : tessera_emu_half::f2bf((float)v);
    memcpy(p, &h, 2);
}

// TF32: float32 rounded to nearest (ties away, as the tensor cores' conversion) at 10 mantissa bits.
double tf32(double v) {
    unsigned u = tessera_emu_half::floatToBits((float)v);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;
    u = (u + 0x1000u) & 0xffffe000u;
    return tessera_emu_half::bitsToFloat(u);
}

// Bytes a batched matrix spans, for the range check.
size_t span(const Layout& l) {
    if (l.rows == 0 || l.cols == 0) return 0;
    uint64_t last = l.order == 0 ? (l.rows - 1) + (l.cols - 1) * (uint64_t)l.ld : (l.rows - 1) * (uint64_t)l.ld + l.cols - 1;
    last += (uint64_t)(l.batchCount - 1) * (uint64_t)(l.batchStride < 0 ? -l.batchStride : l.batchStride);
    return (size_t)(last + 1) * typeSize(l.type);
}

// m, n, k of D = op(A) op(B) (+ C), or an explanation of why the shapes do not fit.
bool shapes(const MatmulDesc& d, const Layout& a, const Layout& b, const Layout& c, const Layout& dl,
            uint64_t& m, uint64_t& n, uint64_t& k, std::string& why) {
    m = d.transA ? a.cols : a.rows;
    k = d.transA ? a.rows : a.cols;
    uint64_t kb = d.transB ? b.cols : b.rows;
    n = d.transB ? b.rows : b.cols;
    char text[256];
    if (kb != k || c.rows != m || c.cols != n || dl.rows != m || dl.cols != n) {
        snprintf(text, sizeof text, "op(A) %llux%llu, op(B) %llux%llu, C %llux%llu, D %llux%llu do not fit",
                 (unsigned long long)m, (unsigned long long)k, (unsigned long long)kb, (unsigned long long)n,
                 (unsigned long long)c.rows, (unsigned long long)c.cols, (unsigned long long)dl.rows,
                 (unsigned long long)dl.cols);
        why = text;
        return false;
    }
    for (const Layout* l : {&a, &b, &c, &dl}) {
        uint64_t minLd = l->order == 0 ? l->rows : l->cols;
        if (l->ld < (int64_t)(minLd > 0 ? minLd : 1)) { why = "a leading dimension smaller than the matrix"; return false; }
    }
    int batch = dl.batchCount;
    for (const Layout* l : {&a, &b, &c})
        if (l->batchCount != batch && l->batchCount != 1) { why = "batch counts differ"; return false; }
    if (d.transC) { why = "TRANSC is not supported"; return false; }
    if (d.epilogue != 1) { why = "epilogues are not emulated"; return false; }
    if (d.pointerMode != 0) { why = "only host pointers for alpha and beta are emulated"; return false; }
    if (d.scaleType != R_32F) { why = "only float32 alpha and beta are emulated"; return false; }
    if (a.type != b.type || c.type != dl.type) { why = "mixed input types are not emulated"; return false; }
    return true;
}

}  // namespace

extern "C" {

size_t cublasLtGetVersion() { return 120900; }

int cublasLtCreate(Handle** handle) {
    if (!handle) return INVALID_VALUE;
    *handle = new Handle;
    return SUCCESS;
}

int cublasLtDestroy(Handle* handle) {
    delete handle;
    return SUCCESS;
}

int cublasLtMatmulDescCreate(MatmulDesc** desc, int computeType, int scaleType) {
    if (!desc) return INVALID_VALUE;
    if (computeType != COMPUTE_32F && computeType != COMPUTE_32F_FAST_TF32 && computeType != COMPUTE_32F_FAST_16F &&
        computeType != COMPUTE_32F_FAST_16BF && computeType != COMPUTE_16F)
        return NOT_SUPPORTED;
    *desc = new MatmulDesc{computeType, scaleType};
    return SUCCESS;
}

int cublasLtMatmulDescDestroy(MatmulDesc* desc) {
    delete desc;
    return SUCCESS;
}

int cublasLtMatmulDescSetAttribute(MatmulDesc* desc, int attribute, const void* buffer, size_t size) {
    if (!desc) return INVALID_VALUE;
    switch (attribute) {
    case 0: return setFrom(desc->computeType, buffer, size);
    case 1: return setFrom(desc->scaleType, buffer, size);
    case 2: return setFrom(desc->pointerMode, buffer, size);
    case 3: return setFrom(desc->transA, buffer, size);
    case 4: return setFrom(desc->transB, buffer, size);
    case 5: return setFrom(desc->transC, buffer, size);
    case 7: return setFrom(desc->epilogue, buffer, size);
    default:
        report("cublasLtMatmulDescSetAttribute", "attribute " + std::to_string(attribute) + " is not emulated");
        return NOT_SUPPORTED;
    }
}

int cublasLtMatrixLayoutCreate(Layout** layout, int type, uint64_t rows, uint64_t cols, int64_t ld) {
    if (!layout) return INVALID_VALUE;
    if (!knownType(type)) return NOT_SUPPORTED;
    *layout = new Layout{type, rows, cols, ld};
    return SUCCESS;
}

int cublasLtMatrixLayoutDestroy(Layout* layout) {
    delete layout;
    return SUCCESS;
}

int cublasLtMatrixLayoutSetAttribute(Layout* layout, int attribute, const void* buffer, size_t size) {
    if (!layout) return INVALID_VALUE;
    switch (attribute) {
    case 0: return setFrom(layout->type, buffer, size);
    case 1: return setFrom(layout->order, buffer, size);
    case 2: return setFrom(layout->rows, buffer, size);
    case 3: return setFrom(layout->cols, buffer, size);
    case 4: return setFrom(layout->ld, buffer, size);
    case 5: return setFrom(layout->batchCount, buffer, size);
    case 6: return setFrom(layout->batchStride, buffer, size);
    default:
        report("cublasLtMatrixLayoutSetAttribute", "attribute " + std::to_string(attribute) + " is not emulated");
        return NOT_SUPPORTED;
    }
}

int cublasLtMatmulPreferenceCreate(Preference** preference) {
    if (!preference) return INVALID_VALUE;
    *preference = new Preference;
    return SUCCESS;
}

int cublasLtMatmulPreferenceDestroy(Preference* preference) {
    delete preference;
    return SUCCESS;
}

int cublasLtMatmulPreferenceSetAttribute(Preference* preference, int attribute, const void* buffer, size_t size) {
    if (!preference || !buffer) return INVALID_VALUE;
    if (attribute == 1) return setFrom(preference->maxWorkspace, buffer, size);
    return SUCCESS;  // search mode, alignments, ...: any value suits the reference GEMM
}

// cublasLtMatmulHeuristicResult_t: algo (64 bytes), workspaceSize, state, wavesCount, reserved[4].
int cublasLtMatmulAlgoGetHeuristic(Handle* handle, MatmulDesc* desc, Layout* a, Layout* b, Layout* c, Layout* d,
                                   Preference* preference, int requested, void* results, int* returned) {
    if (!handle || !desc || !a || !b || !c || !d || !preference || requested <= 0 || !results || !returned)
        return INVALID_VALUE;
    uint64_t m, n, k;
    std::string why;
    if (!shapes(*desc, *a, *b, *c, *d, m, n, k, why)) {
        report("cublasLtMatmulAlgoGetHeuristic", why);
        *returned = 0;
        return NOT_SUPPORTED;
    }
    memset(results, 0, 96);
    float waves = 1;
    memcpy((char*)results + 76, &waves, 4);
    *returned = 1;
    return SUCCESS;
}

int cublasLtMatmul(Handle* handle, MatmulDesc* desc, const void* alpha, const void* A, Layout* a, const void* B,
                   Layout* b, const void* beta, const void* C, Layout* c, void* D, Layout* d, const void* algo,
                   void* workspace, size_t workspaceBytes, void* stream) {
    if (!handle || !desc || !alpha || !beta || !a || !b || !c || !d || !D) return INVALID_VALUE;
    uint64_t m, n, k;
    std::string why;
    if (!shapes(*desc, *a, *b, *c, *d, m, n, k, why)) {
        report("cublasLtMatmul", why);
        return INVALID_VALUE;
    }
    float scale[2];
    memcpy(&scale[0], alpha, 4);
    memcpy(&scale[1], beta, 4);
    findDriver();
    if (deviceAccess) deviceAccess(1);  // after what the streams hold
    if (deviceRange) {
        bool ok = deviceRange(A, span(*a), "cublasLtMatmul A") && deviceRange(B, span(*b), "cublasLtMatmul B") &&
                  deviceRange(D, span(*d), "cublasLtMatmul D") &&
                  (scale[1] == 0 || deviceRange(C, span(*c), "cublasLtMatmul C"));
        if (!ok) {
            if (deviceAccess) deviceAccess(0);
            return EXECUTION_FAILED;
        }
    }
    bool roundTF32 = desc->computeType == COMPUTE_32F_FAST_TF32 && a->type == R_32F;
    int batches = d->batchCount;
    std::vector<double> row(k);
    for (int batch = 0; batch < batches; ++batch) {
        const char* pa = (const char*)A + (a->batchCount > 1 ? batch * a->batchStride * (int64_t)typeSize(a->type) : 0);
        const char* pb = (const char*)B + (b->batchCount > 1 ? batch * b->batchStride * (int64_t)typeSize(b->type) : 0);
        const char* pc = (const char*)C + (c->batchCount > 1 ? batch * c->batchStride * (int64_t)typeSize(c->type) : 0);
        char* pd = (char*)D + (d->batchCount > 1 ? batch * d->batchStride * (int64_t)typeSize(d->type) : 0);
        // Each output element reads C before D is written (C and D may be the same matrix).
        for (uint64_t i = 0; i < m; ++i) {
            for (uint64_t p = 0; p < k; ++p) {
                double v = desc->transA ? load(*a, pa, p, i) : load(*a, pa, i, p);
                row[p] = roundTF32 ? tf32(v) : v;
            }
            for (uint64_t j = 0; j < n; ++j) {
                double acc = 0;
                for (uint64_t p = 0; p < k; ++p) {
                    double w = desc->transB ? load(*b, pb, j, p) : load(*b, pb, p, j);
                    acc += row[p] * (roundTF32 ? tf32(w) : w);
                }
                double out = (double)scale[0] * acc;
                if (scale[1] != 0) out += (double)scale[1] * load(*c, pc, i, j);
                store(*d, pd, i, j, out);
            }
        }
    }
    if (deviceAccess) deviceAccess(0);
    return SUCCESS;
}

}  // extern "C"
