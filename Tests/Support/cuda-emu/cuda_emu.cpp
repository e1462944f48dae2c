// libcuda_emu.so: the CUDA driver API calls Tessera makes, emulated on the
// CPU so the whole GPU path (device memory, copies, NVRTC modules, launches)
// runs and is tested on machines without a GPU. One fake device, "Tessera CUDA
// emulator" (SM 9.0 unless TESSERA_CUDA_EMU_CC says otherwise).
//
// - Device memory is host memory, each allocation in its own mapping with
//   inaccessible guard pages right after its end (rounded up to 256 bytes)
//   and before its start, so out-of-bounds accesses fault. A kernel fault
//   (segfault, bus error, integer division by zero) ends the launch with
//   CUDA_ERROR_ILLEGAL_ADDRESS (or the matching error) and a message naming the
//   kernel, block, thread and the address relative to the nearest allocation.
// - Checks a real GPU would only show as a crash or garbage: kernel pointer
//   parameters must be null or point into device (or pinned host) memory;
//   copies must stay inside their allocation; calls that need a context fail
//   without a current one (CUDA_ERROR_INVALID_CONTEXT); handles are validated;
//   launches check block/grid limits and dynamic shared memory against the
//   function's limit (48 KiB unless raised with cuFuncSetAttribute).
// - Kernels run at launch, after whatever waits in their stream; copies
//   involving pinned host memory wait in their stream until something
//   synchronizes with it (see Stream below). Each block's
//   threads are coroutines on one OS thread, switched at __syncthreads and at
//   warp-collective operations (shuffles, ballots, __syncwarp), which wait for
//   the lanes named in their mask. Odd-numbered blocks run their threads in
//   reverse order, so a missing barrier shows up as a wrong result whichever
//   thread writes first. A deadlock (a barrier some live thread never reaches,
//   lanes disagreeing on a warp operation) and a shuffle reading a lane that
//   is not taking part end the launch with CUDA_ERROR_LAUNCH_FAILED.
// - Errors are reported by the failing call and are not sticky (unlike a real
//   context), so one failing kernel does not stop a self-test run.
// Environment: TESSERA_CUDA_EMU_SMS (multiprocessors, default 4),
// TESSERA_CUDA_EMU_MEMORY_MB (device memory, default 4096),
// TESSERA_CUDA_EMU_CC (compute capability, default "9.0").

#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "emu_image.h"

using namespace __tessera_emu;

typedef int CUresult;
typedef uint64_t CUdeviceptr;

enum : int {
    CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_OUT_OF_MEMORY = 2, CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_NO_DEVICE = 100, CUDA_ERROR_INVALID_DEVICE = 101, CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201, CUDA_ERROR_INVALID_HANDLE = 400, CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600, CUDA_ERROR_ILLEGAL_ADDRESS = 700, CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_ASSERT = 710, CUDA_ERROR_HARDWARE_STACK_ERROR = 714, CUDA_ERROR_ILLEGAL_INSTRUCTION = 715,
    CUDA_ERROR_LAUNCH_FAILED = 719, CUDA_ERROR_NOT_SUPPORTED = 801, CUDA_ERROR_UNKNOWN = 999,
};

namespace {

// ---- configuration ----
long envLong(const char* name, long fallback) {
    const char* v = getenv(name);
    return v && *v ? atol(v) : fallback;
}
int multiprocessors() { return (int)envLong("TESSERA_CUDA_EMU_SMS", 4); }
size_t totalMemory() { return (size_t)envLong("TESSERA_CUDA_EMU_MEMORY_MB", 4096) << 20; }
void computeCapability(int& major, int& minor) {
    major = 9;
    minor = 0;
    const char* v = getenv("TESSERA_CUDA_EMU_CC");
    if (v && *v) sscanf(v, "%d.%d", &major, &minor);
}

void report(const char* format, ...) {
    char buffer[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(buffer, sizeof buffer, format, args);
    va_end(args);
    fprintf(stderr, "tessera cuda emulator: %s\n", buffer);
}

std::recursive_mutex gLock;  // one driver call at a time
bool gInitialized = false;
const size_t kPage = 4096;

// ---- memory ----
struct Allocation {
    uintptr_t start;
    size_t size;
    void* mapping;
    size_t mappingSize;
    bool pinned;
    bool open = true;  // device memory is inaccessible to the host except while the driver uses it
};
std::map<uintptr_t, Allocation> gAllocations;  // by start
size_t gDeviceBytes = 0;

// Device memory is mapped PROT_NONE outside driver calls and kernels, so host
// code that reads or writes a device pointer faults here as on a GPU, with a
// message (TESSERA_CUDA_EMU_PROTECT=0 leaves it readable).
bool protecting() {
    static const bool on = getenv("TESSERA_CUDA_EMU_PROTECT") == nullptr || atoi(getenv("TESSERA_CUDA_EMU_PROTECT")) != 0;
    return on;
}
void setAccess(Allocation& a, bool open) {
    if (a.pinned || a.open == open || !protecting()) return;
    mprotect((char*)a.mapping + 4096, a.mappingSize - 2 * 4096, open ? PROT_READ | PROT_WRITE : PROT_NONE);
    a.open = open;
}
// The allocations opened by the current driver operation, closed at its end.
std::vector<Allocation*> gOpened;
Allocation* findMutable(uintptr_t address) {
    auto it = gAllocations.upper_bound(address);
    if (it == gAllocations.begin()) return nullptr;
    --it;
    Allocation& a = it->second;
    return address >= a.start && address < a.start + a.size ? &a : nullptr;
}
// Opens the device allocation holding `address`, if any (no allocation: safe in the fault handler
// while gOpened has spare capacity).
bool openAt(uintptr_t address) {
    Allocation* a = findMutable(address);
    if (!a || a->pinned || a->open) return false;
    setAccess(*a, true);
    if (gOpened.size() < gOpened.capacity()) gOpened.push_back(a);
    return true;
}
void closeOpened() {
    for (Allocation* a : gOpened) setAccess(*a, false);
    gOpened.clear();
}

size_t roundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// The allocation containing [address, address + bytes), or null.
const Allocation* findAllocation(uintptr_t address, size_t bytes = 0) {
    auto it = gAllocations.upper_bound(address);
    if (it == gAllocations.begin()) return nullptr;
    --it;
    const Allocation& a = it->second;
    if (address >= a.start && address + bytes <= a.start + a.size && (bytes > 0 || address <= a.start + a.size))
        return &a;
    return nullptr;
}

// Where an address lies relative to the allocations, for fault messages.
std::string describeAddress(uintptr_t address) {
    char buffer[256];
    const Allocation* best = nullptr;
    long long bestDistance = 0;
    for (auto& entry : gAllocations) {
        const Allocation& a = entry.second;
        long long d = address < a.start ? (long long)(a.start - address)
                                        : address >= a.start + a.size ? (long long)(address - (a.start + a.size) + 1) : 0;
        if (!best || d < bestDistance) { best = &a; bestDistance = d; }
    }
    if (!best || bestDistance > (1 << 20)) return "not within 1 MiB of any device or pinned allocation";
    const char* kind = best->pinned ? "pinned host" : "device";
    if (address < best->start)
        snprintf(buffer, sizeof buffer, "%llu bytes before the %s allocation of %zu bytes at 0x%llx",
                 (unsigned long long)(best->start - address), kind, best->size, (unsigned long long)best->start);
    else if (address >= best->start + best->size)
        snprintf(buffer, sizeof buffer, "byte %llu of the %s allocation of %zu bytes at 0x%llx (past its end)",
                 (unsigned long long)(address - best->start), kind, best->size, (unsigned long long)best->start);
    else
        snprintf(buffer, sizeof buffer, "inside the %s allocation of %zu bytes at 0x%llx", kind, best->size,
                 (unsigned long long)best->start);
    return buffer;
}

// A mapping with a guard page on each side; the block ends 256-aligned just
// before the upper guard page.
void* mapGuarded(size_t bytes, bool pinned, uintptr_t& start) {
    size_t rounded = roundUp(bytes, 256);
    size_t data = roundUp(rounded, kPage);
    size_t total = data + 2 * kPage;
    void* m = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    char* base = (char*)m + kPage;
    if (mprotect(base, data, PROT_READ | PROT_WRITE) != 0) {
        munmap(m, total);
        return nullptr;
    }
    start = (uintptr_t)(base + data - rounded);
    // Fresh device memory holds garbage on a GPU: 0xff bytes (NaN floats) make
    // reads of never-written memory visible.
    if (!pinned) memset((void*)start, 0xff, rounded);
    gAllocations[start] = Allocation{start, bytes, m, total, pinned};
    setAccess(gAllocations[start], false);
    gOpened.reserve(gAllocations.size() + 64);
    return m;
}

// ---- contexts, streams, events, modules, functions ----
struct Context { int refs = 0; };
Context gPrimary;
thread_local Context* tCurrent = nullptr;
// Copies to or from pinned host memory wait in their stream until something
// synchronizes with it (a stream or event synchronization, a launch or a
// synchronous copy on the stream, a free): the latest a GPU could run them,
// so a missing synchronization reads stale data here instead of passing by
// luck. TESSERA_CUDA_EMU_DEFER=0 runs them when issued.
struct Event;
struct Stream {
    unsigned flags;
    std::vector<std::function<void()>> pending;
};
struct Event {
    bool recorded = false, done = true;
    double time = 0;
    Stream* stream = nullptr;
};
struct Function;
struct Module {
    void* handle;
    std::map<std::string, Function*> functions;
};
struct Function {
    Module* module;
    std::string name;
    void (*launch)(void**);
    const KernelInfo* info;
    int maxDynamicShared = 48 * 1024;
};
std::set<Stream*> gStreams;
std::set<Event*> gEvents;
std::set<Module*> gModules;
std::set<Function*> gFunctions;

bool validStream(void* s) { return s == nullptr || gStreams.count((Stream*)s); }

bool deferring() {
    static const bool defer = envLong("TESSERA_CUDA_EMU_DEFER", 1) != 0;
    return defer;
}

// TESSERA_CUDA_EMU_DEFER_KERNELS=1: kernels too wait in their stream (with a
// copy of their parameters) until something synchronizes with it, so work on
// one stream that reads another's results without an event wait reads stale
// memory. A deferred kernel's failure is returned by the next stream or event
// synchronization.
bool deferringKernels() {
    static const bool defer = envLong("TESSERA_CUDA_EMU_DEFER_KERNELS", 0) != 0;
    return defer;
}
int gDeferredFailure = 0;
int takeDeferredFailure() {
    int failure = gDeferredFailure;
    gDeferredFailure = 0;
    return failure;
}

// Runs what waits in `stream` (all streams for the null stream, which synchronizes with every other).
void flush(Stream* stream);
void flushAll() {
    for (Stream* s : gStreams) flush(s);
}
void flush(Stream* stream) {
    if (!stream) { flushAll(); return; }
    std::vector<std::function<void()>> work;
    work.swap(stream->pending);
    for (auto& op : work) op();
    closeOpened();
}

bool isPinned(const void* p, size_t bytes) {
    const Allocation* a = findAllocation((uintptr_t)p, bytes);
    return a && a->pinned;
}

// A copy on `stream`: deferred when it involves pinned host memory, else the stream is flushed and it runs now.
void enqueueCopy(void* stream, bool pinned, void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    Stream* s = (Stream*)stream;
    if (pinned && s && deferring()) {
        s->pending.push_back([dst, src, bytes] {
            openAt((uintptr_t)dst);
            openAt((uintptr_t)src);
            memcpy(dst, src, bytes);
        });
        return;
    }
    flush(s);
    openAt((uintptr_t)dst);
    openAt((uintptr_t)src);
    memcpy(dst, src, bytes);
    closeOpened();
}
double now() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

#define REQUIRE_INIT() \
    do { if (!gInitialized) return CUDA_ERROR_NOT_INITIALIZED; } while (0)
#define REQUIRE_CONTEXT() \
    do { \
        REQUIRE_INIT(); \
        if (!tCurrent) { report("%s called without a current context (cuCtxSetCurrent on this thread?)", __func__); \
                         return CUDA_ERROR_INVALID_CONTEXT; } \
    } while (0)

// ---- coroutines: an emulated thread's own stack, switched to and from ----
// x86-64: a hand-written switch (callee-saved registers, MXCSR and the x87
// control word), 20x faster than swapcontext, which makes a system call to
// save the signal mask each time. Elsewhere: ucontext.
#if defined(__x86_64__)
extern "C" void tessera_emu_switch(void** save, void* load);
extern "C" void tessera_emu_start();
asm(R"(
    .text
    .globl tessera_emu_switch
    .hidden tessera_emu_switch
    .type tessera_emu_switch, @function
tessera_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tessera_emu_switch, .-tessera_emu_switch

    .globl tessera_emu_start
    .hidden tessera_emu_start
    .type tessera_emu_start, @function
tessera_emu_start:
    callq *%r13
    ud2
    .size tessera_emu_start, .-tessera_emu_start
)");

struct Coroutine {
    void* sp = nullptr;
};

// A coroutine that runs `entry` (which must never return) on [stack, stack + bytes).
void coroutineStart(Coroutine& c, char* stack, size_t bytes, void (*entry)()) {
    uintptr_t top = ((uintptr_t)stack + bytes) & ~(uintptr_t)15;
    uint64_t* sp = (uint64_t*)(top - 64);
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    sp[0] = mxcsr | ((uint64_t)fpucw << 32);
    sp[1] = 0;                  // r15
    sp[2] = 0;                  // r14
    sp[3] = (uint64_t)entry;    // r13: what tessera_emu_start calls
    sp[4] = 0;                  // r12
    sp[5] = 0;                  // rbx
    sp[6] = 0;                  // rbp
    sp[7] = (uint64_t)tessera_emu_start;
    c.sp = sp;
}

void coroutineSwitch(Coroutine& from, Coroutine& to) { tessera_emu_switch(&from.sp, to.sp); }
#else
struct Coroutine {
    ucontext_t context;
};

void coroutineStart(Coroutine& c, char* stack, size_t bytes, void (*entry)()) {
    getcontext(&c.context);
    c.context.uc_stack.ss_sp = stack;
    c.context.uc_stack.ss_size = bytes;
    c.context.uc_link = nullptr;
    makecontext(&c.context, entry, 0);
}

void coroutineSwitch(Coroutine& from, Coroutine& to) { swapcontext(&from.context, &to.context); }
#endif

// ---- running a launch ----
enum ThreadStatus { READY, AT_BARRIER, AT_WARP, DONE };

struct EmuThread {
    ThreadState state;
    Coroutine context;
    int status = READY;
    int linear = 0, warp = 0, lane = 0;
    int barrierOp = 0, predicate = 0, barrierResult = 0;
    int op = 0, arg = 0, width = 32, isSigned = 0;
    unsigned mask = 0;
    unsigned long long value = 0, result = 0;
};

struct LaunchRun {
    Function* function;
    void** params;
    Idx3 grid, block;
    unsigned sharedBytes;
    std::vector<EmuThread> threads;
    Coroutine scheduler;
    int error = 0;
    std::string message;
    Idx3 blockIdx;
};

thread_local LaunchRun* tRun = nullptr;
thread_local EmuThread* tThread = nullptr;
thread_local unsigned char* tDynamicShared = nullptr;
const size_t kDynamicSharedMax = 256 * 1024;
const size_t kStackBytes = 256 * 1024;
std::vector<char*> gStacks;  // reused across launches

char* stackFor(size_t index) {
    while (gStacks.size() <= index) {
        void* m = mmap(nullptr, kStackBytes + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (m == MAP_FAILED) return nullptr;
        mprotect(m, kPage, PROT_NONE);  // overflow guard
        gStacks.push_back((char*)m + kPage);
    }
    return gStacks[index];
}

std::string threadName(const EmuThread* t) {
    char buffer[160];
    snprintf(buffer, sizeof buffer, "block (%u,%u,%u) thread (%u,%u,%u)", t->state.blockIdx.x, t->state.blockIdx.y,
             t->state.blockIdx.z, t->state.threadIdx.x, t->state.threadIdx.y, t->state.threadIdx.z);
    return buffer;
}

void failRun(int error, const std::string& message) {
    if (tRun->error == 0) {
        tRun->error = error;
        tRun->message = message;
    }
}

// Runtime functions the kernel module calls.
ThreadState* rtCurrent() { return &tThread->state; }

[[noreturn]] void rtFail(int error, const char* message) {
    EmuThread* me = tThread;
    failRun(error, threadName(me) + ": " + message);
    me->status = DONE;
    coroutineSwitch(me->context, tRun->scheduler);  // never resumed
    abort();
}

int rtBarrier(int op, int predicate) {
    EmuThread* me = tThread;
    me->status = AT_BARRIER;
    me->barrierOp = op;
    me->predicate = predicate;
    coroutineSwitch(me->context, tRun->scheduler);
    return me->barrierResult;
}

unsigned long long rtWarp(int op, unsigned mask, unsigned long long value, int arg, int width, int isSigned) {
    EmuThread* me = tThread;
    LaunchRun* run = tRun;
    size_t n = run->threads.size();
    if (op == WARP_SYNC && arg == 1 && mask == 0) {  // __activemask(): the live lanes
        unsigned live = 0;
        for (size_t k = (size_t)me->warp * 32; k < n && k < (size_t)me->warp * 32 + 32; ++k)
            if (run->threads[k].status != DONE) live |= 1u << run->threads[k].lane;
        return live;
    }
    if (!(mask & (1u << me->lane))) {
        char text[128];
        snprintf(text, sizeof text, "a warp operation with mask 0x%08x that leaves out the calling lane %d", mask, me->lane);
        rtFail(CUDA_ERROR_LAUNCH_FAILED, text);
    }
    if (width <= 0 || width > 32 || (width & (width - 1))) rtFail(CUDA_ERROR_LAUNCH_FAILED, "a shuffle width that is not a power of 2 up to 32");
    me->status = AT_WARP;
    me->op = op;
    me->mask = mask;
    me->value = value;
    me->arg = arg;
    me->width = width;
    me->isSigned = isSigned;
    coroutineSwitch(me->context, run->scheduler);
    return me->result;
}

void* rtDynamicShared() { return tDynamicShared; }

const Runtime gRuntime = {TESSERA_EMU_ABI, rtCurrent, rtBarrier, rtWarp, rtDynamicShared, rtFail};

void threadEntry() {
    tRun->function->launch(tRun->params);
    EmuThread* me = tThread;
    me->status = DONE;
    coroutineSwitch(me->context, tRun->scheduler);  // never resumed
    abort();
}

const char* opName(int op) {
    static const char* names[] = {"__syncwarp", "__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                                  "__ballot_sync", "__any_sync", "__all_sync", "__match_any_sync", "__reduce_add_sync",
                                  "__reduce_min_sync", "__reduce_max_sync", "__reduce_and_sync", "__reduce_or_sync",
                                  "__reduce_xor_sync"};
    return op >= 0 && op < (int)(sizeof names / sizeof *names) ? names[op] : "a warp operation";
}

// Completes the warp operations whose lanes have all arrived; false if none could.
bool resolveWarps(LaunchRun& run) {
    bool progress = false;
    size_t n = run.threads.size();
    for (size_t w = 0; w * 32 < n; ++w) {
        EmuThread* lanes[32] = {nullptr};
        unsigned exists = 0, live = 0;
        for (size_t k = w * 32; k < n && k < w * 32 + 32; ++k) {
            EmuThread& t = run.threads[k];
            lanes[t.lane] = &t;
            exists |= 1u << t.lane;
            if (t.status != DONE) live |= 1u << t.lane;
        }
        for (int l = 0; l < 32; ++l) {
            EmuThread* first = lanes[l];
            if (!first || first->status != AT_WARP) continue;
            unsigned mask = first->mask;
            if (mask & ~exists) {
                char text[200];
                snprintf(text, sizeof text, "%s with mask 0x%08x names lanes that do not exist (warp %zu has lanes 0x%08x)",
                         opName(first->op), mask, w, exists);
                failRun(CUDA_ERROR_LAUNCH_FAILED, threadName(first) + ": " + text);
                return false;
            }
            unsigned group = mask & live;
            bool ready = true;
            for (int k = 0; k < 32; ++k)
                if ((group >> k) & 1) ready = ready && lanes[k]->status == AT_WARP;
            if (!ready) continue;
            for (int k = 0; k < 32; ++k) {
                if (!((group >> k) & 1)) continue;
                if (lanes[k]->op != first->op || lanes[k]->mask != mask) {
                    char text[200];
                    snprintf(text, sizeof text, "lanes of warp %zu disagree: lane %d is in %s (mask 0x%08x), lane %d in %s (mask 0x%08x)",
                             w, l, opName(first->op), mask, k, opName(lanes[k]->op), lanes[k]->mask);
                    failRun(CUDA_ERROR_LAUNCH_FAILED, threadName(first) + ": " + text);
                    return false;
                }
            }
            unsigned long long ballot = 0, anyBits = 0;
            for (int k = 0; k < 32; ++k)
                if ((group >> k) & 1 && lanes[k]->value != 0) ballot |= 1ull << k;
            anyBits = ballot;
            for (int k = 0; k < 32; ++k) {
                if (!((group >> k) & 1)) continue;
                EmuThread& t = *lanes[k];
                int width = t.width, segment = k & ~(width - 1), src = k;
                bool own = false;
                switch (t.op) {
                case WARP_SHFL: src = segment + (t.arg & (width - 1)); break;
                case WARP_SHFL_UP: src = k - t.arg; own = src < segment; break;
                case WARP_SHFL_DOWN: src = k + t.arg; own = src >= segment + width; break;
                case WARP_SHFL_XOR: src = k ^ t.arg; own = src < segment || src >= segment + width; break;
                default: break;
                }
                switch (t.op) {
                case WARP_SHFL: case WARP_SHFL_UP: case WARP_SHFL_DOWN: case WARP_SHFL_XOR:
                    if (own) { t.result = t.value; break; }
                    if (src < 0 || src > 31 || !((group >> src) & 1)) {
                        char text[200];
                        snprintf(text, sizeof text, "%s reads lane %d, which is not taking part (mask 0x%08x, live lanes 0x%08x): its value is undefined on a GPU",
                                 opName(t.op), src, mask, live);
                        failRun(CUDA_ERROR_LAUNCH_FAILED, threadName(&t) + ": " + text);
                        return false;
                    }
                    t.result = lanes[src]->value;
                    break;
                case WARP_BALLOT: t.result = ballot; break;
                case WARP_ANY: t.result = anyBits != 0; break;
                case WARP_ALL: t.result = ballot == group; break;
                case WARP_MATCH_ANY: {
                    unsigned m = 0;
                    for (int j = 0; j < 32; ++j)
                        if ((group >> j) & 1 && lanes[j]->value == t.value) m |= 1u << j;
                    t.result = m;
                    break;
                }
                case WARP_REDUCE_ADD: case WARP_REDUCE_MIN: case WARP_REDUCE_MAX: case WARP_REDUCE_AND:
                case WARP_REDUCE_OR: case WARP_REDUCE_XOR: {
                    bool started = false;
                    unsigned acc = 0;
                    for (int j = 0; j < 32; ++j) {
                        if (!((group >> j) & 1)) continue;
                        unsigned v = (unsigned)lanes[j]->value;
                        if (!started) { acc = v; started = true; continue; }
                        switch (t.op) {
                        case WARP_REDUCE_ADD: acc += v; break;
                        case WARP_REDUCE_AND: acc &= v; break;
                        case WARP_REDUCE_OR: acc |= v; break;
                        case WARP_REDUCE_XOR: acc ^= v; break;
                        case WARP_REDUCE_MIN: acc = t.isSigned ? (unsigned)std::min((int)acc, (int)v) : std::min(acc, v); break;
                        case WARP_REDUCE_MAX: acc = t.isSigned ? (unsigned)std::max((int)acc, (int)v) : std::max(acc, v); break;
                        }
                    }
                    t.result = acc;
                    break;
                }
                default: t.result = 0; break;
                }
            }
            for (int k = 0; k < 32; ++k)
                if ((group >> k) & 1) lanes[k]->status = READY;
            progress = true;
        }
    }
    return progress;
}

bool resolveBarrier(LaunchRun& run) {
    int count = 0, waiting = 0;
    for (EmuThread& t : run.threads) {
        if (t.status == DONE) continue;
        if (t.status != AT_BARRIER) return false;
        ++waiting;
        count += t.predicate;
    }
    if (waiting == 0) return false;
    for (EmuThread& t : run.threads) {
        if (t.status != AT_BARRIER) continue;
        t.barrierResult = t.barrierOp == BARRIER_COUNT ? count : t.barrierOp == BARRIER_AND ? count == waiting
                                                       : t.barrierOp == BARRIER_OR ? count > 0 : 0;
        t.status = READY;
    }
    return true;
}

std::string deadlockReport(LaunchRun& run) {
    int ready = 0, barrier = 0, warp = 0, done = 0;
    std::string example;
    for (EmuThread& t : run.threads) {
        if (t.status == READY) ++ready;
        if (t.status == AT_BARRIER) ++barrier;
        if (t.status == AT_WARP) {
            ++warp;
            if (example.empty()) example = "; e.g. " + threadName(&t) + " waits in " + opName(t.op);
        }
        if (t.status == DONE) ++done;
    }
    char text[256];
    snprintf(text, sizeof text, "deadlock: %d threads wait at __syncthreads, %d in warp operations, %d have exited%s",
             barrier, warp, done, example.c_str());
    return text;
}

// Fault handling while a kernel runs: back to the launcher through siglongjmp.
thread_local sigjmp_buf tFaultJump;
thread_local volatile sig_atomic_t tInKernel = 0;
thread_local int tFaultSignal = 0;
thread_local uintptr_t tFaultAddress = 0;
thread_local char* tAltStack = nullptr;

struct sigaction gPreviousSegv, gPreviousBus;

void faultHandler(int signal, siginfo_t* info, void*) {
    if (!tInKernel) {
        // The host touched memory it may not: if a device allocation, say so; then
        // the previous handler (or the default action) takes the repeated fault.
        const Allocation* a = findAllocation((uintptr_t)info->si_addr, 1);
        if (a && !a->pinned) {
            char text[256];
            int n = snprintf(text, sizeof text,
                             "tessera cuda emulator: the host accessed device memory at %p (a device allocation of %zu "
                             "bytes at 0x%llx); on a GPU this pointer is not host memory\n",
                             info->si_addr, a->size, (unsigned long long)a->start);
            if (n > 0) { ssize_t ignored = write(2, text, (size_t)n); (void)ignored; }
        }
        sigaction(signal, signal == SIGBUS ? &gPreviousBus : &gPreviousSegv, nullptr);
        return;
    }
    // A kernel reaching device memory not passed as a pointer parameter (e.g. a
    // pointer inside a struct): open it and retry the access.
    if ((signal == SIGSEGV || signal == SIGBUS) && openAt((uintptr_t)info->si_addr)) return;
    tFaultSignal = signal;
    tFaultAddress = (uintptr_t)info->si_addr;
    tInKernel = 0;
    siglongjmp(tFaultJump, 1);
}

bool runBlocks(LaunchRun& run) {
    size_t threadsPerBlock = (size_t)run.block.x * run.block.y * run.block.z;
    run.threads.assign(threadsPerBlock, EmuThread());
    for (size_t k = 0; k < threadsPerBlock; ++k) {
        if (!stackFor(k)) {
            failRun(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "cannot map thread stacks");
            return false;
        }
    }
    unsigned long long blockNumber = 0;
    for (unsigned bz = 0; bz < run.grid.z; ++bz)
        for (unsigned by = 0; by < run.grid.y; ++by)
            for (unsigned bx = 0; bx < run.grid.x; ++bx, ++blockNumber) {
                run.blockIdx = {bx, by, bz};
                if (run.sharedBytes) memset(tDynamicShared, 0xff, run.sharedBytes);
                for (size_t k = 0; k < threadsPerBlock; ++k) {
                    EmuThread& t = run.threads[k];
                    t = EmuThread();
                    t.linear = (int)k;
                    t.warp = (int)(k / 32);
                    t.lane = (int)(k % 32);
                    t.state.threadIdx = {(unsigned)(k % run.block.x), (unsigned)(k / run.block.x % run.block.y),
                                         (unsigned)(k / ((size_t)run.block.x * run.block.y))};
                    t.state.blockIdx = run.blockIdx;
                    t.state.blockDim = run.block;
                    t.state.gridDim = run.grid;
                    coroutineStart(t.context, gStacks[k], kStackBytes, threadEntry);
                }
                bool reverse = blockNumber % 2 == 1;
                for (;;) {
                    for (size_t j = 0; j < threadsPerBlock; ++j) {
                        EmuThread& t = run.threads[reverse ? threadsPerBlock - 1 - j : j];
                        if (t.status != READY) continue;
                        tThread = &t;
                        coroutineSwitch(run.scheduler, t.context);
                        if (run.error) return false;
                    }
                    bool allDone = true;
                    for (EmuThread& t : run.threads) allDone = allDone && t.status == DONE;
                    if (allDone) break;
                    if (resolveWarps(run)) continue;
                    if (run.error) return false;
                    if (resolveBarrier(run)) continue;
                    failRun(CUDA_ERROR_LAUNCH_FAILED, deadlockReport(run));
                    return false;
                }
            }
    return true;
}

CUresult launch(Function* f, Idx3 grid, Idx3 block, unsigned sharedBytes, void** params) {
    LaunchRun run;
    run.function = f;
    run.params = params;
    run.grid = grid;
    run.block = block;
    run.sharedBytes = sharedBytes;
    if (!tDynamicShared) tDynamicShared = (unsigned char*)aligned_alloc(256, kDynamicSharedMax);
    if (!tAltStack) tAltStack = (char*)malloc(1 << 16);
    stack_t alt = {}, oldAlt;
    alt.ss_sp = tAltStack;
    alt.ss_size = 1 << 16;
    sigaltstack(&alt, &oldAlt);
    struct sigaction action, old[4];
    memset(&action, 0, sizeof action);
    action.sa_sigaction = faultHandler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    const int signals[4] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (int k = 0; k < 4; ++k) sigaction(signals[k], &action, &old[k]);
    tRun = &run;
    tFaultSignal = 0;
    gOpened.reserve(gAllocations.size() + 64);
    for (unsigned k = 0; k < f->info->count; ++k) {
        uintptr_t p;
        if (!f->info->isPointer[k]) continue;
        memcpy(&p, params[k], sizeof p);
        openAt(p);
    }
    if (sigsetjmp(tFaultJump, 1) == 0) {
        tInKernel = 1;
        runBlocks(run);
        tInKernel = 0;
    } else {
        EmuThread* t = tThread;
        std::string where = t ? threadName(t) : std::string("?");
        char text[512];
        if (tFaultSignal == SIGFPE) {
            snprintf(text, sizeof text, "%s: arithmetic exception (integer division by zero or overflow); a GPU gives an unspecified value instead", where.c_str());
            failRun(CUDA_ERROR_LAUNCH_FAILED, text);
        } else if (tFaultSignal == SIGILL) {
            snprintf(text, sizeof text, "%s: illegal instruction", where.c_str());
            failRun(CUDA_ERROR_ILLEGAL_INSTRUCTION, text);
        } else {
            uintptr_t a = tFaultAddress;
            bool stack = false;
            for (char* s : gStacks) stack = stack || (a >= (uintptr_t)s - kPage && a < (uintptr_t)s);
            snprintf(text, sizeof text, "%s: %s at address 0x%llx (%s)", where.c_str(),
                     stack ? "thread stack overflow" : "illegal memory access", (unsigned long long)a,
                     stack ? "a kernel thread's stack is 256 KiB" : describeAddress(a).c_str());
            failRun(stack ? CUDA_ERROR_HARDWARE_STACK_ERROR : CUDA_ERROR_ILLEGAL_ADDRESS, text);
        }
    }
    closeOpened();
    for (int k = 0; k < 4; ++k) sigaction(signals[k], &old[k], nullptr);
    sigaltstack(&oldAlt, nullptr);
    tRun = nullptr;
    tThread = nullptr;
    if (run.error) {
        report("kernel %s failed: %s", f->name.c_str(), run.message.c_str());
        return run.error;
    }
    return CUDA_SUCCESS;
}

bool checkDeviceRange(CUdeviceptr p, size_t bytes, const char* call) {
    if (bytes == 0) return true;
    const Allocation* a = findAllocation((uintptr_t)p, bytes);
    if (a && !a->pinned) return true;
    report("%s: [0x%llx, +%zu) is not inside one device allocation (%s)", call, (unsigned long long)p, bytes,
           describeAddress((uintptr_t)p).c_str());
    return false;
}

bool checkHostRange(const void* p, size_t bytes, const char* call) {
    if (bytes == 0) return true;
    if (!p) {
        report("%s: null host pointer", call);
        return false;
    }
    const Allocation* a = findAllocation((uintptr_t)p, 0);
    if (a && !a->pinned) {
        report("%s: the host pointer 0x%llx is device memory", call, (unsigned long long)(uintptr_t)p);
        return false;
    }
    if (a && a->pinned && !findAllocation((uintptr_t)p, bytes)) {
        report("%s: [0x%llx, +%zu) runs past the end of its pinned allocation", call, (unsigned long long)(uintptr_t)p, bytes);
        return false;
    }
    return true;
}

}  // namespace

extern "C" {

// ---- errors ----
CUresult cuGetErrorString(CUresult error, const char** text) {
    if (!text) return CUDA_ERROR_INVALID_VALUE;
    switch (error) {
    case CUDA_SUCCESS: *text = "no error"; break;
    case CUDA_ERROR_INVALID_VALUE: *text = "invalid argument"; break;
    case CUDA_ERROR_OUT_OF_MEMORY: *text = "out of memory"; break;
    case CUDA_ERROR_NOT_INITIALIZED: *text = "initialization error"; break;
    case CUDA_ERROR_NO_DEVICE: *text = "no CUDA-capable device is detected"; break;
    case CUDA_ERROR_INVALID_DEVICE: *text = "invalid device ordinal"; break;
    case CUDA_ERROR_INVALID_IMAGE: *text = "device kernel image is invalid"; break;
    case CUDA_ERROR_INVALID_CONTEXT: *text = "invalid device context"; break;
    case CUDA_ERROR_INVALID_HANDLE: *text = "invalid resource handle"; break;
    case CUDA_ERROR_NOT_FOUND: *text = "named symbol not found"; break;
    case CUDA_ERROR_NOT_READY: *text = "device not ready"; break;
    case CUDA_ERROR_ILLEGAL_ADDRESS: *text = "an illegal memory access was encountered"; break;
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: *text = "too many resources requested for launch"; break;
    case CUDA_ERROR_ASSERT: *text = "device-side assert triggered"; break;
    case CUDA_ERROR_HARDWARE_STACK_ERROR: *text = "hardware stack error"; break;
    case CUDA_ERROR_ILLEGAL_INSTRUCTION: *text = "an illegal instruction was encountered"; break;
    case CUDA_ERROR_LAUNCH_FAILED: *text = "unspecified launch failure"; break;
    case CUDA_ERROR_NOT_SUPPORTED: *text = "operation not supported"; break;
    default: *text = "unknown error"; return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char** text) {
    if (!text) return CUDA_ERROR_INVALID_VALUE;
    static std::map<int, std::string> names;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (names.empty()) {
        names = {{0, "CUDA_SUCCESS"}, {1, "CUDA_ERROR_INVALID_VALUE"}, {2, "CUDA_ERROR_OUT_OF_MEMORY"},
                 {3, "CUDA_ERROR_NOT_INITIALIZED"}, {100, "CUDA_ERROR_NO_DEVICE"}, {101, "CUDA_ERROR_INVALID_DEVICE"},
                 {200, "CUDA_ERROR_INVALID_IMAGE"}, {201, "CUDA_ERROR_INVALID_CONTEXT"},
                 {400, "CUDA_ERROR_INVALID_HANDLE"}, {500, "CUDA_ERROR_NOT_FOUND"}, {600, "CUDA_ERROR_NOT_READY"},
                 {700, "CUDA_ERROR_ILLEGAL_ADDRESS"}, {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"},
                 {710, "CUDA_ERROR_ASSERT"}, {714, "CUDA_ERROR_HARDWARE_STACK_ERROR"},
                 {715, "CUDA_ERROR_ILLEGAL_INSTRUCTION"}, {719, "CUDA_ERROR_LAUNCH_FAILED"},
                 {801, "CUDA_ERROR_NOT_SUPPORTED"}};
    }
    auto it = names.find(error);
    if (it == names.end()) return CUDA_ERROR_INVALID_VALUE;
    *text = it->second.c_str();
    return CUDA_SUCCESS;
}

// ---- initialization and the device ----
CUresult cuInit(unsigned flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!gInitialized && protecting()) {  // a message when the host touches device memory
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = faultHandler;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, &gPreviousSegv);
        sigaction(SIGBUS, &action, &gPreviousBus);
    }
    gInitialized = true;
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = 12090;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
    REQUIRE_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(int* device, int ordinal) {
    REQUIRE_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int length, int device) {
    REQUIRE_INIT();
    if (!name || length <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, (size_t)length, "Tessera CUDA emulator");
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* value, int attribute, int device) {
    REQUIRE_INIT();
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    int major, minor;
    computeCapability(major, minor);
    switch (attribute) {
    case 1: *value = 1024; break;                    // max threads per block
    case 2: case 3: *value = 1024; break;            // max block dim x, y
    case 4: *value = 64; break;                      // max block dim z
    case 5: *value = 2147483647; break;              // max grid dim x
    case 6: case 7: *value = 65535; break;           // max grid dim y, z
    case 8: *value = 48 * 1024; break;               // shared memory per block
    case 9: *value = 65536; break;                   // constant memory
    case 10: *value = 32; break;                     // warp size
    case 12: case 82: *value = 65536; break;         // registers per block / multiprocessor
    case 13: *value = 1980000; break;                // clock rate (kHz)
    case 16: *value = multiprocessors(); break;      // multiprocessors
    case 19: case 31: case 41: case 83: case 115: *value = 1; break;  // map host, concurrent kernels, UVA, managed, pools
    case 38: *value = 50 << 20; break;               // L2 bytes
    case 39: *value = 2048; break;                   // threads per multiprocessor
    case 40: *value = 2; break;                      // copy engines
    case 75: *value = major; break;
    case 76: *value = minor; break;
    case 81: *value = 228 * 1024; break;             // shared memory per multiprocessor
    case 97: *value = 227 * 1024; break;             // shared memory per block, opt-in
    case 106: *value = 32; break;                    // blocks per multiprocessor
    default: *value = 0; break;
    }
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, int device) {
    REQUIRE_INIT();
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = totalMemory();
    return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int* major, int* minor, int device) {
    REQUIRE_INIT();
    if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    computeCapability(*major, *minor);
    return CUDA_SUCCESS;
}

// ---- contexts ----
CUresult cuDevicePrimaryCtxRetain(void** context, int device) {
    REQUIRE_INIT();
    if (!context) return CUDA_ERROR_INVALID_VALUE;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    ++gPrimary.refs;
    *context = &gPrimary;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(int device) {
    REQUIRE_INIT();
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (gPrimary.refs > 0) --gPrimary.refs;
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(void* context) {
    REQUIRE_INIT();
    if (context && context != &gPrimary) return CUDA_ERROR_INVALID_CONTEXT;
    if (context && gPrimary.refs == 0) {
        report("cuCtxSetCurrent: the primary context was not retained");
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    tCurrent = (Context*)context;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(void** context) {
    REQUIRE_INIT();
    if (!context) return CUDA_ERROR_INVALID_VALUE;
    *context = tCurrent;
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize() {
    REQUIRE_CONTEXT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    flushAll();
    return CUDA_SUCCESS;
}

// ---- memory ----
CUresult cuMemGetInfo_v2(size_t* freeBytes, size_t* totalBytes) {
    REQUIRE_CONTEXT();
    if (!freeBytes || !totalBytes) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    *totalBytes = totalMemory();
    *freeBytes = *totalBytes > gDeviceBytes ? *totalBytes - gDeviceBytes : 0;
    return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t bytes) {
    REQUIRE_CONTEXT();
    if (!pointer || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (gDeviceBytes + bytes > totalMemory()) return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t start = 0;
    if (!mapGuarded(bytes, false, start)) return CUDA_ERROR_OUT_OF_MEMORY;
    gDeviceBytes += bytes;
    *pointer = start;
    return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr pointer) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    flushAll();  // cuMemFree synchronizes
    auto it = gAllocations.find((uintptr_t)pointer);
    if (it == gAllocations.end() || it->second.pinned) {
        report("cuMemFree: 0x%llx is not the start of a device allocation (%s)", (unsigned long long)pointer,
               describeAddress((uintptr_t)pointer).c_str());
        return CUDA_ERROR_INVALID_VALUE;
    }
    gDeviceBytes -= it->second.size;
    munmap(it->second.mapping, it->second.mappingSize);
    gAllocations.erase(it);
    return CUDA_SUCCESS;
}

CUresult cuMemAllocHost_v2(void** pointer, size_t bytes) {
    REQUIRE_CONTEXT();
    if (!pointer || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    uintptr_t start = 0;
    if (!mapGuarded(bytes, true, start)) return CUDA_ERROR_OUT_OF_MEMORY;
    *pointer = (void*)start;
    return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void** pointer, size_t bytes, unsigned) { return cuMemAllocHost_v2(pointer, bytes); }

CUresult cuMemFreeHost(void* pointer) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    flushAll();
    auto it = gAllocations.find((uintptr_t)pointer);
    if (it == gAllocations.end() || !it->second.pinned) {
        report("cuMemFreeHost: %p is not the start of a pinned host allocation", pointer);
        return CUDA_ERROR_INVALID_VALUE;
    }
    munmap(it->second.mapping, it->second.mappingSize);
    gAllocations.erase(it);
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, void* stream) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (!checkDeviceRange(dst, bytes, "cuMemcpyHtoD") || !checkHostRange(src, bytes, "cuMemcpyHtoD"))
        return CUDA_ERROR_INVALID_VALUE;
    enqueueCopy(stream, isPinned(src, bytes), (void*)(uintptr_t)dst, src, bytes);
    return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, void* stream) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (!checkDeviceRange(src, bytes, "cuMemcpyDtoH") || !checkHostRange(dst, bytes, "cuMemcpyDtoH"))
        return CUDA_ERROR_INVALID_VALUE;
    enqueueCopy(stream, isPinned(dst, bytes), dst, (const void*)(uintptr_t)src, bytes);
    return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, void* stream) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (!checkDeviceRange(src, bytes, "cuMemcpyDtoD") || !checkDeviceRange(dst, bytes, "cuMemcpyDtoD"))
        return CUDA_ERROR_INVALID_VALUE;
    flush((Stream*)stream);
    openAt((uintptr_t)dst);
    openAt((uintptr_t)src);
    if (bytes) memmove((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, bytes);
    closeOpened();
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) { return cuMemcpyHtoDAsync_v2(dst, src, bytes, nullptr); }
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) { return cuMemcpyDtoHAsync_v2(dst, src, bytes, nullptr); }
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) { return cuMemcpyDtoDAsync_v2(dst, src, bytes, nullptr); }

static CUresult memsetDevice(CUdeviceptr dst, unsigned value, size_t elementSize, size_t count, void* stream, const char* call) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (!checkDeviceRange(dst, elementSize * count, call)) return CUDA_ERROR_INVALID_VALUE;
    if (dst % elementSize) return CUDA_ERROR_INVALID_VALUE;
    flush((Stream*)stream);
    char* p = (char*)(uintptr_t)dst;
    openAt((uintptr_t)p);
    for (size_t k = 0; k < count; ++k) ::memcpy(p + k * elementSize, &value, elementSize);
    closeOpened();
    return CUDA_SUCCESS;
}
CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { return memsetDevice(d, v, 1, n, nullptr, "cuMemsetD8"); }
CUresult cuMemsetD16_v2(CUdeviceptr d, unsigned short v, size_t n) { return memsetDevice(d, v, 2, n, nullptr, "cuMemsetD16"); }
CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned v, size_t n) { return memsetDevice(d, v, 4, n, nullptr, "cuMemsetD32"); }
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void* s) { return memsetDevice(d, v, 1, n, s, "cuMemsetD8Async"); }
CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, void* s) { return memsetDevice(d, v, 2, n, s, "cuMemsetD16Async"); }
CUresult cuMemsetD32Async(CUdeviceptr d, unsigned v, size_t n, void* s) { return memsetDevice(d, v, 4, n, s, "cuMemsetD32Async"); }

CUresult cuMemAllocAsync(CUdeviceptr* pointer, size_t bytes, void* stream) {
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    return cuMemAlloc_v2(pointer, bytes);
}
CUresult cuMemFreeAsync(CUdeviceptr pointer, void* stream) {
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    return cuMemFree_v2(pointer);
}

// ---- streams and events (work runs when issued, so they are always complete) ----
CUresult cuStreamCreate(void** stream, unsigned flags) {
    REQUIRE_CONTEXT();
    if (!stream) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    Stream* s = new Stream;
    s->flags = flags;
    gStreams.insert(s);
    *stream = s;
    return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(void* stream) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!stream || !gStreams.count((Stream*)stream)) return CUDA_ERROR_INVALID_HANDLE;
    flush((Stream*)stream);
    for (Event* e : gEvents)
        if (e->stream == stream) e->stream = nullptr;
    gStreams.erase((Stream*)stream);
    delete (Stream*)stream;
    return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(void* stream) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    flush((Stream*)stream);
    return (CUresult)takeDeferredFailure();
}

CUresult cuStreamQuery(void* stream) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (!stream) {
        for (Stream* s : gStreams)
            if (!s->pending.empty()) return CUDA_ERROR_NOT_READY;
        return CUDA_SUCCESS;
    }
    return ((Stream*)stream)->pending.empty() ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuStreamWaitEvent(void* stream, void* event, unsigned) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!validStream(stream) || !gEvents.count((Event*)event)) return CUDA_ERROR_INVALID_HANDLE;
    Event* e = (Event*)event;
    if (!e->done) flush(e->stream);  // the waiting stream's later work needs it
    return CUDA_SUCCESS;
}

CUresult cuEventCreate(void** event, unsigned) {
    REQUIRE_CONTEXT();
    if (!event) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    Event* e = new Event;
    gEvents.insert(e);
    *event = e;
    return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(void* event) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!event || !gEvents.count((Event*)event)) return CUDA_ERROR_INVALID_HANDLE;
    if (!((Event*)event)->done) flush(((Event*)event)->stream);  // its marker must run before it goes
    gEvents.erase((Event*)event);
    delete (Event*)event;
    return CUDA_SUCCESS;
}

CUresult cuEventRecord(void* event, void* stream) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!gEvents.count((Event*)event) || !validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    Event* e = (Event*)event;
    Stream* s = (Stream*)stream;
    e->recorded = true;
    if (s && !s->pending.empty()) {
        e->done = false;
        e->stream = s;
        s->pending.push_back([e] { e->done = true; e->time = now(); });
    } else {
        if (!s) flushAll();
        e->done = true;
        e->stream = s;
        e->time = now();
    }
    return CUDA_SUCCESS;
}

CUresult cuEventSynchronize(void* event) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!gEvents.count((Event*)event)) return CUDA_ERROR_INVALID_HANDLE;
    Event* e = (Event*)event;
    if (!e->done && e->stream) flush(e->stream);
    return (CUresult)takeDeferredFailure();
}

CUresult cuEventQuery(void* event) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!gEvents.count((Event*)event)) return CUDA_ERROR_INVALID_HANDLE;
    return ((Event*)event)->done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventElapsedTime(float* ms, void* start, void* end) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!ms) return CUDA_ERROR_INVALID_VALUE;
    if (!gEvents.count((Event*)start) || !gEvents.count((Event*)end)) return CUDA_ERROR_INVALID_HANDLE;
    if (!((Event*)start)->recorded || !((Event*)end)->recorded) return CUDA_ERROR_INVALID_HANDLE;
    *ms = (float)(((Event*)end)->time - ((Event*)start)->time);
    return CUDA_SUCCESS;
}

// ---- modules and functions ----
CUresult cuModuleLoadData(void** module, const void* image) {
    REQUIRE_CONTEXT();
    if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
    TesseraEmuImageHeader header;
    ::memcpy(&header, image, sizeof header);
    if (::memcmp(header.magic, kTesseraEmuMagic, 8) != 0) {
        report("cuModuleLoadData: not an emulator module (a real CUBIN or PTX? compile with libnvrtc_emu.so)");
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (header.abi != TESSERA_EMU_ABI) {
        report("cuModuleLoadData: module built for emulator ABI %u, this is %d", header.abi, TESSERA_EMU_ABI);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    const char* tmp = getenv("TMPDIR");
    std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/tessera-cuda-emu-module-XXXXXX";
    std::vector<char> name(path.begin(), path.end());
    name.push_back(0);
    int fd = mkstemp(name.data());
    if (fd < 0) return CUDA_ERROR_INVALID_IMAGE;
    const char* bytes = (const char*)image + sizeof header;
    size_t left = header.size;
    while (left > 0) {
        ssize_t n = write(fd, bytes, left);
        if (n <= 0) { close(fd); unlink(name.data()); return CUDA_ERROR_INVALID_IMAGE; }
        bytes += n;
        left -= (size_t)n;
    }
    close(fd);
    void* handle = dlopen(name.data(), RTLD_NOW | RTLD_LOCAL);
    unlink(name.data());
    if (!handle) {
        report("cuModuleLoadData: %s", dlerror());
        return CUDA_ERROR_INVALID_IMAGE;
    }
    auto bind = (int (*)(const Runtime*))dlsym(handle, "__tessera_emu_bind");
    if (!bind || bind(&gRuntime) != TESSERA_EMU_ABI) {
        dlclose(handle);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    std::lock_guard<std::recursive_mutex> guard(gLock);
    Module* m = new Module{handle, {}};
    gModules.insert(m);
    *module = m;
    return CUDA_SUCCESS;
}

CUresult cuModuleLoadDataEx(void** module, const void* image, unsigned, void*, void**) {
    return cuModuleLoadData(module, image);
}

CUresult cuModuleUnload(void* module) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    Module* m = (Module*)module;
    if (!gModules.erase(m)) return CUDA_ERROR_INVALID_HANDLE;
    flushAll();
    for (auto& f : m->functions) { gFunctions.erase(f.second); delete f.second; }
    dlclose(m->handle);
    delete m;
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(void** function, void* module, const char* name) {
    REQUIRE_INIT();
    if (!function || !name) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    Module* m = (Module*)module;
    if (!gModules.count(m)) return CUDA_ERROR_INVALID_HANDLE;
    auto found = m->functions.find(name);
    if (found != m->functions.end()) { *function = found->second; return CUDA_SUCCESS; }
    auto launchFunction = (void (*)(void**))dlsym(m->handle, (std::string("__tessera_emu_launch_") + name).c_str());
    auto infoFunction = (const KernelInfo* (*)())dlsym(m->handle, (std::string("__tessera_emu_info_") + name).c_str());
    if (!launchFunction || !infoFunction) return CUDA_ERROR_NOT_FOUND;
    Function* f = new Function{m, name, launchFunction, infoFunction()};
    m->functions[name] = f;
    gFunctions.insert(f);
    *function = f;
    return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(void* function, int attribute, int value) {
    REQUIRE_INIT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    Function* f = (Function*)function;
    if (!gFunctions.count(f)) return CUDA_ERROR_INVALID_HANDLE;
    if (attribute == 8) {  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        if (value < 0 || value > 227 * 1024) return CUDA_ERROR_INVALID_VALUE;
        f->maxDynamicShared = value;
    }
    return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int* value, int attribute, void* function) {
    REQUIRE_INIT();
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    Function* f = (Function*)function;
    if (!gFunctions.count(f)) return CUDA_ERROR_INVALID_HANDLE;
    switch (attribute) {
    case 0: *value = 1024; break;  // max threads per block
    case 4: *value = 32; break;    // registers
    case 5: case 6: { int a, b; computeCapability(a, b); *value = a * 10 + b; break; }
    case 8: *value = f->maxDynamicShared; break;
    default: *value = 0; break;
    }
    return CUDA_SUCCESS;
}

CUresult cuFuncSetCacheConfig(void* function, int) {
    std::lock_guard<std::recursive_mutex> guard(gLock);
    return gFunctions.count((Function*)function) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned sharedBytes, void* stream, void** params, void** extra) {
    REQUIRE_CONTEXT();
    std::lock_guard<std::recursive_mutex> guard(gLock);
    Function* f = (Function*)function;
    if (!gFunctions.count(f)) return CUDA_ERROR_INVALID_HANDLE;
    if (!validStream(stream)) return CUDA_ERROR_INVALID_HANDLE;
    const char* name = f->name.c_str();
    if (extra) {
        report("cuLaunchKernel(%s): `extra` parameter buffers are not emulated; pass kernelParams", name);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 ||
        (unsigned long long)bx * by * bz > 1024 || gy > 65535 || gz > 65535 || gx > 2147483647u) {
        report("cuLaunchKernel(%s): invalid grid (%u,%u,%u) or block (%u,%u,%u)", name, gx, gy, gz, bx, by, bz);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if ((int)sharedBytes > f->maxDynamicShared) {
        report("cuLaunchKernel(%s): %u bytes of dynamic shared memory, over the function's limit of %d "
               "(raise it with cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES))",
               name, sharedBytes, f->maxDynamicShared);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (f->info->count > 0 && !params) {
        report("cuLaunchKernel(%s): the kernel takes %u parameters but kernelParams is null", name, f->info->count);
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (unsigned k = 0; k < f->info->count; ++k) {
        if (!params[k]) {
            report("cuLaunchKernel(%s): kernelParams[%u] is null", name, k);
            return CUDA_ERROR_INVALID_VALUE;
        }
        if (!f->info->isPointer[k]) continue;
        uintptr_t p;
        ::memcpy(&p, params[k], sizeof p);
        if (p == 0 || findAllocation(p, 0)) continue;
        report("cuLaunchKernel(%s): pointer parameter %u is 0x%llx, which is not device memory (%s); "
               "a GPU would fault on it", name, k, (unsigned long long)p, describeAddress(p).c_str());
        return CUDA_ERROR_ILLEGAL_ADDRESS;
    }
    if (stream && deferringKernels()) {
        // Copies of the parameter values, alive until the kernel runs.
        auto values = std::make_shared<std::vector<std::vector<char>>>();
        for (unsigned k = 0; k < f->info->count; ++k) {
            const char* v = (const char*)params[k];
            values->emplace_back(v, v + f->info->sizes[k]);
        }
        ((Stream*)stream)->pending.push_back([f, gx, gy, gz, bx, by, bz, sharedBytes, values] {
            std::vector<void*> pointers;
            for (auto& v : *values) pointers.push_back(v.data());
            CUresult r = launch(f, {gx, gy, gz}, {bx, by, bz}, sharedBytes, pointers.data());
            if (r != CUDA_SUCCESS && !gDeferredFailure) gDeferredFailure = r;
        });
        return CUDA_SUCCESS;
    }
    flush((Stream*)stream);  // the kernel runs now, after what its stream holds
    return launch(f, {gx, gy, gz}, {bx, by, bz}, sharedBytes, params);
}

// For libcublasLt_emu.so: 1 when [pointer, pointer + bytes) (else a report naming `call`, and 0)
// lies in one device allocation, which stays open to the host until tessera_emu_device_access(0).
int tessera_emu_device_range(const void* pointer, size_t bytes, const char* call) {
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!checkDeviceRange((CUdeviceptr)(uintptr_t)pointer, bytes, call)) return 0;
    openAt((uintptr_t)pointer);
    return 1;
}

// For libcublasLt_emu.so: 1 before its work (runs what the streams hold), 0 after (closes what it opened).
void tessera_emu_device_access(int begin) {
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (begin) flushAll();
    else closeOpened();
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void* function, int blockSize, size_t) {
    if (!blocks || blockSize <= 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(gLock);
    if (!gFunctions.count((Function*)function)) return CUDA_ERROR_INVALID_HANDLE;
    *blocks = std::max(1, std::min(32, 2048 / blockSize));
    return CUDA_SUCCESS;
}

}  // extern "C"
