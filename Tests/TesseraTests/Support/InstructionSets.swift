// Shared by the kernel tests that run a kernel on every instruction set the C
// kernels' dispatch can pick on this CPU (CPUKernelTests, AttentionDecodeTests,
// AttentionPrefillTests).

import CTesseraKernels

/// Runs `body` once per instruction set this CPU supports (baseline, AVX2,
/// AVX-512: `tk_set_isa`), with its name, then restores the best one (also when
/// `body` throws).
func forEachISA(_ body: (String) throws -> Void) rethrows {
    defer { _ = tk_set_isa(tk_isa_supported()) }
    for isa in 0...Int(tk_isa_supported()) {
        _ = tk_set_isa(Int32(isa))
        try body(["baseline", "avx2", "avx512"][isa])
    }
}
