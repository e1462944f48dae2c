// The tessera command line: thin; it parses and calls the library.

import Tessera
#if canImport(Glibc)
import Glibc
#endif

let version = "0.1.0"

func usage() -> String {
    """
    usage: tessera <command>

    commands:
      devices     list the devices Tessera can run on, with their memory
      demo        evaluate a small example computation
      --version   print the version
    """
}

let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "--version", "version":
    print("tessera \(version)")
case "devices":
    for info in DeviceInfo.all() { print(info) }
case "demo":
    let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    let b = Tensor.ones([3], dtype: .float16)
    let c = (a * 2 + b).sum(axes: [1])
    print("a =", a)
    print("(a * 2 + ones(3)).sum(axes: [1]) =", c)
    print("matmul(a, a.T) =", matmul(a, a.T))
    print("softmax-like: exp(a) / exp(a).sum() =", exp(a) / exp(a).sum())
default:
    print(usage())
    if let first = args.first, first != "help", first != "--help", first != "-h" {
        print("\nunknown command: \(first)")
        exit(2)
    }
}
