// LAPACK, opened at run time with dlopen (OpenBLAS's libopenblas.so.0
// includes it; so does the reference liblapack.so.3), so the build has no
// hard dependency. Only the double-precision Fortran routines are bound:
// linear-algebra kernels compute in float64. Arguments go by pointer, integers
// are 32-bit (LP64 builds), character arguments carry gfortran's hidden lengths.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

typealias LInt = Int32
typealias IntP = UnsafePointer<LInt>
typealias IntM = UnsafeMutablePointer<LInt>
typealias DblM = UnsafeMutablePointer<Double>
typealias Chr = UnsafePointer<CChar>

struct LAPACK: @unchecked Sendable {
    typealias Getrf = @convention(c) (IntP, IntP, DblM, IntP, IntM, IntM) -> Void
    typealias Getri = @convention(c) (IntP, DblM, IntP, IntM, DblM, IntP, IntM) -> Void
    typealias Gesv = @convention(c) (IntP, IntP, DblM, IntP, IntM, DblM, IntP, IntM) -> Void
    typealias Potrf = @convention(c) (Chr, IntP, DblM, IntP, IntM, Int) -> Void
    typealias Geqrf = @convention(c) (IntP, IntP, DblM, IntP, DblM, DblM, IntP, IntM) -> Void
    typealias Orgqr = @convention(c) (IntP, IntP, IntP, DblM, IntP, DblM, DblM, IntP, IntM) -> Void
    typealias Gesdd =
        @convention(c) (Chr, IntP, IntP, DblM, IntP, DblM, DblM, IntP, DblM, IntP, DblM, IntP, IntM, IntM, Int) -> Void
    typealias Syev = @convention(c) (Chr, Chr, IntP, DblM, IntP, DblM, DblM, IntP, IntM, Int, Int) -> Void

    let library: String
    let dgetrf: Getrf
    let dgetri: Getri
    let dgesv: Gesv
    let dpotrf: Potrf
    let dgeqrf: Geqrf
    let dorgqr: Orgqr
    let dgesdd: Gesdd
    let dsyev: Syev

    /// Libraries tried in order.
    static let candidates = ["libopenblas.so.0", "liblapack.so.3", "libopenblas.so", "liblapack.so"]
    static let installHint = "install it with `apt-get install -y libopenblas-dev` (or liblapack3)"

    /// The first candidate that opens and has every routine, or the reason none does.
    static func load(from names: [String] = candidates) -> Result<LAPACK, TesseraError> {
        var reasons: [String] = []
        for name in names {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else {
                reasons.append("\(name): not found")
                continue
            }
            func symbol<F>(_ s: String, _: F.Type) -> F? {
                dlsym(handle, s).map { unsafeBitCast($0, to: F.self) }
            }
            if let getrf = symbol("dgetrf_", Getrf.self), let getri = symbol("dgetri_", Getri.self),
                let gesv = symbol("dgesv_", Gesv.self), let potrf = symbol("dpotrf_", Potrf.self),
                let geqrf = symbol("dgeqrf_", Geqrf.self), let orgqr = symbol("dorgqr_", Orgqr.self),
                let gesdd = symbol("dgesdd_", Gesdd.self), let syev = symbol("dsyev_", Syev.self)
            {
                return .success(
                    LAPACK(
                        library: name, dgetrf: getrf, dgetri: getri, dgesv: gesv, dpotrf: potrf, dgeqrf: geqrf,
                        dorgqr: orgqr, dgesdd: gesdd, dsyev: syev))
            }
            reasons.append("\(name): lacks LAPACK routines")
            dlclose(handle)
        }
        return .failure(
            .libraryUnavailable(
                "LAPACK is needed for linear algebra but \(reasons.joined(separator: "; ")); \(installHint)"))
    }

    /// The process-wide LAPACK, opened on first use.
    static let shared = load()

    /// The loaded library, or the typed error that says how to install one.
    static func get() throws -> LAPACK { try shared.get() }
}
