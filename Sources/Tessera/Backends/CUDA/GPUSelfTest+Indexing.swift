// Selftest cases: see CUDADispatch+Indexing.swift for the kernels they check.

extension GPUSelfTest {
    static var indexingCases: [Case] { [] }
}
