// The tessera command line: thin; it parses and calls the library.

#if canImport(Glibc)
import Glibc
#endif
import Tessera

let version = "0.1.0"

let usage = """
    usage: tessera <command> [options]

    commands:
      generate    generate text: --prompt TEXT [--model PATH] [--max-tokens N] [--temp T] [--top-p P]
                  [--top-k K] [--min-p P] [--seed S] [--system TEXT] [--no-chat-template] [--max-kv-size N]
                  [--kv-bits 4|8] [--kv-group-size 32|64|128] [--prompt-cache FILE] [--precision high|highest]
                  (--prompt-cache: reuse the prompt's keys/values from FILE when the prompt starts with the
                  tokens it holds, else compute them and save them there)
                  (without --model, the default model SmolLM2-135M-Instruct is fetched once into the cache)
                  (--precision: how finely quantized decode products round activations on CPUs with
                  AVX-512 VNNI: high, the default, to 16 bits; highest to 24, float32's level)
      chat        an interactive conversation (same model and sampling options)
      convert     --model PATH --output DIR [--bits 4] [--group-size 64 (32 from a GGUF)]: write an MLX-format
                  quantized folder
      tokenize    --text TEXT [--add-special] prints token ids; --ids "1 2 3" decodes them
      devices     list the devices Tessera can run on, with their memory
      selftest    [--filter NAME] run the op table on the GPU against the CPU ("no GPU" and exit 0 without one);
                  --bench [--quick]: GEMM, bandwidth, qmv, attention and SmolLM2-shaped decode timings on the GPU
      demo        evaluate a small example computation
      --version   print the version
    """

let args = Array(CommandLine.arguments.dropFirst())
do {
    switch args.first {
    case "--version", "version":
        print("tessera \(version)")
    case "devices":
        for info in DeviceInfo.all() { print(info) }
    case "selftest":
        let filterIndex = args.firstIndex(of: "--filter").map { $0 + 1 }
        let filter = filterIndex.flatMap { $0 < args.count ? args[$0] : nil }
        if args.contains("--bench") {
            try LanguageCommands.gpuBench(quick: args.contains("--quick"))
            break
        }
        switch GPUSelfTest.run(filter: filter) {
        case .failure(let error):
            print("selftest: no GPU (\(error))")
        case .success(let rows):
            for row in rows { print(row) }
            let failed = rows.filter { !$0.passed }.count
            print("selftest: \(rows.count - failed)/\(rows.count) passed on gpu(0)")
            if failed > 0 { exit(1) }
        }
    case "demo":
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let b = Tensor.ones([3], dtype: .float16)
        let c = (a * 2 + b).sum(axes: [1])
        print("a =", a)
        print("(a * 2 + ones(3)).sum(axes: [1]) =", c)
        print("matmul(a, a.T) =", matmul(a, a.T))
        print("softmax-like: exp(a) / exp(a).sum() =", exp(a) / exp(a).sum())
    case "generate":
        try await LanguageCommands.generate(args.dropFirst())
    case "chat":
        try await LanguageCommands.chat(args.dropFirst())
    case "convert":
        try LanguageCommands.convert(args.dropFirst())
    case "tokenize":
        try LanguageCommands.tokenize(args.dropFirst())
    case nil, "help", "--help", "-h":
        print(usage)
    default:
        throw UsageError("unknown command \(args[0])\n\n\(usage)")
    }
} catch let error as UsageError {
    printError("error: \(error)")
    exit(2)
} catch {
    printError("error: \(error)")
    exit(1)
}
