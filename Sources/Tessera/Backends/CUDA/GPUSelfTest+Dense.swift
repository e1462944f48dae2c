// Selftest cases: see CUDADispatch+Dense.swift for the kernels they check.

extension GPUSelfTest {
    static var denseCases: [Case] { [] }
}
