// Selftest cases: see CUDADispatch+Compiled.swift for the kernels they check.

extension GPUSelfTest {
    static var compiledCases: [Case] { [] }
}
