// Shared by the kernel tests that run a kernel on every instruction set the C
// kernels' dispatch can pick on this CPU (CPUKernelTests, AttentionDecodeTests,
// AttentionPrefillTests; with the VNNI switch, the integer prefill product's
// tests).

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

/// As `forEachISA`, and on an AVX-512 CPU with VNNI once more with VNNI
/// switched off (`tk_set_qmv_vnni(0)`: the AVX-512 paths without it). `body`
/// gets the label, the instruction set (0 baseline, 1 AVX2, 2 AVX-512) and
/// whether VNNI is on; the best instruction set and VNNI are restored after.
func forEachISAAndVNNI(_ body: (_ label: String, _ isa: Int, _ vnni: Bool) throws -> Void) rethrows {
    defer {
        _ = tk_set_isa(tk_isa_supported())
        _ = tk_set_qmv_vnni(1)
    }
    for isa in 0...Int(tk_isa_supported()) {
        _ = tk_set_isa(Int32(isa))
        let name = ["baseline", "avx2", "avx512"][isa]
        guard isa == 2 && tk_qmv_vnni() != 0 else {
            try body(name, isa, false)
            continue
        }
        for vnni in [true, false] {
            _ = tk_set_qmv_vnni(vnni ? 1 : 0)
            try body(vnni ? name : name + " without VNNI", isa, vnni)
        }
        _ = tk_set_qmv_vnni(1)
    }
}
