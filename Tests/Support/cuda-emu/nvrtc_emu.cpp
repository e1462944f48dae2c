// libnvrtc_emu.so: the NVRTC calls Tessera makes, with the host C++ compiler
// in place of NVIDIA's. "Compiling" a CUDA source:
//   1. preprocess it with emu_kernel.h force-included (c++ -E);
//   2. rewrite the preprocessed text: drop the __global__ markers (noting the
//      kernel names), turn __shared__ into per-thread statics and
//      `extern __shared__ T x[]` into a pointer to the launch's dynamic shared
//      memory, and inline-PTX asm statements into calls of __ptx::<opcode>;
//   3. append one launcher per kernel (a trampoline that unpacks cuLaunchKernel's
//      `void** params` by the kernel's parameter types) and compile it all
//      into a shared library;
// the library's bytes, behind a small header, are the "CUBIN" that
// libcuda_emu.so's cuModuleLoadData loads.
// Environment: TESSERA_CUDA_EMU_CXX (default c++), TESSERA_CUDA_EMU_CXXFLAGS
// (added), TESSERA_CUDA_EMU_KEEP=1 keeps the work folder (its path goes to the log).

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "emu_image.h"

#ifndef TESSERA_EMU_SOURCE_ID
#define TESSERA_EMU_SOURCE_ID "unknown"
#endif

namespace {

const char kAbiHeader[] =
#include "gen/emu_abi.inc"
    ;
const char kKernelHeader[] =
#include "gen/emu_kernel.inc"
    ;
const char kHalfHeader[] =
#include "gen/emu_half.inc"
    ;

struct Program {
    std::string source, name;
    std::vector<std::pair<std::string, std::string>> headers;  // include name, text
    std::string log;
    std::vector<char> image;
};

enum {
    NVRTC_SUCCESS = 0, NVRTC_ERROR_OUT_OF_MEMORY = 1, NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
    NVRTC_ERROR_INVALID_INPUT = 3, NVRTC_ERROR_INVALID_PROGRAM = 4, NVRTC_ERROR_INVALID_OPTION = 5,
    NVRTC_ERROR_COMPILATION = 6, NVRTC_ERROR_BUILTIN_OPERATION_FAILURE = 7,
    NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION = 8, NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION = 9,
    NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID = 10, NVRTC_ERROR_INTERNAL_ERROR = 11,
};

std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

// Runs a shell command; its output (stdout and stderr) goes to `output`.
int run(const std::string& command, std::string& output) {
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return -1;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool writeFile(const std::string& path, const std::string& text) {
    // Make the folders of an include name like "sub/x.cuh".
    for (size_t i = 1; i < path.size(); ++i)
        if (path[i] == '/') mkdir(path.substr(0, i).c_str(), 0700);
    FILE* f = fopen(path.c_str(), "wb");
    if (!f) return false;
    bool ok = fwrite(text.data(), 1, text.size(), f) == text.size();
    return fclose(f) == 0 && ok;
}

bool readFile(const std::string& path, std::string& out) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return false;
    char buffer[1 << 16];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, f)) > 0) out.append(buffer, n);
    fclose(f);
    return true;
}

void removeTree(const std::string& path) {
    std::string ignored;
    run("rm -rf " + shellQuote(path), ignored);
}

std::string compiler() {
    const char* cxx = getenv("TESSERA_CUDA_EMU_CXX");
    return cxx && *cxx ? cxx : "c++";
}

// ---- the rewrite of preprocessed text ----

bool isIdentStart(char c) { return isalpha((unsigned char)c) || c == '_'; }
bool isIdent(char c) { return isalnum((unsigned char)c) || c == '_'; }

struct Rewriter {
    const std::string& in;
    std::string out;
    std::vector<std::string> kernels;
    std::set<std::string> seen;
    std::string error;
    size_t i = 0;
    bool systemFile = false;
    std::string file;
    long line = 1;

    explicit Rewriter(const std::string& text) : in(text) {}

    std::string where() const { return file + ":" + std::to_string(line); }

    // Copies a string or character literal starting at i.
    void copyLiteral() {
        char quote = in[i];
        out += in[i++];
        while (i < in.size() && in[i] != quote) {
            if (in[i] == '\\' && i + 1 < in.size()) out += in[i++];
            if (in[i] == '\n') ++line;
            out += in[i++];
        }
        if (i < in.size()) out += in[i++];
    }

    // A line marker `# 12 "file" flags`.
    void lineMarker() {
        size_t end = in.find('\n', i);
        if (end == std::string::npos) end = in.size();
        std::string text = in.substr(i, end - i);
        out += text;
        i = end;
        long number = 0;
        char name[4096] = {0};
        if (sscanf(text.c_str(), "# %ld \"%4095[^\"]\"", &number, name) == 2) {
            line = number - 1;  // the newline after the marker counts it
            file = name;
            // Flags after the file name: 3 marks a system header.
            std::string flags = " " + text.substr(text.rfind('"') + 1) + " ";
            systemFile = flags.find(" 3 ") != std::string::npos;
        }
    }

    size_t skipSpace(size_t p) const {
        while (p < in.size() && isspace((unsigned char)in[p])) ++p;
        return p;
    }

    std::string identAt(size_t p) const {
        size_t e = p;
        while (e < in.size() && isIdent(in[e])) ++e;
        return in.substr(p, e - p);
    }

    // The index just past the parenthesis matching the one at p.
    size_t matchParen(size_t p) const {
        int depth = 0;
        for (; p < in.size(); ++p) {
            char c = in[p];
            if (c == '"' || c == '\'') {
                char q = c;
                for (++p; p < in.size() && in[p] != q; ++p)
                    if (in[p] == '\\') ++p;
                continue;
            }
            if (c == '(') ++depth;
            if (c == ')' && --depth == 0) return p + 1;
        }
        return std::string::npos;
    }

    // The last identifier of `out` before its end, skipping spaces.
    std::string previousIdent() const {
        size_t p = out.size();
        while (p > 0 && isspace((unsigned char)out[p - 1])) --p;
        size_t e = p;
        while (p > 0 && isIdent(out[p - 1])) --p;
        return out.substr(p, e - p);
    }

    void kernelMarker() {
        // Name: the identifier before the first '(' that is not an attribute's.
        size_t p = i + strlen("__tessera_emu_global");
        std::string last;
        while (p < in.size()) {
            p = skipSpace(p);
            if (p >= in.size()) break;
            if (isIdentStart(in[p])) {
                std::string id = identAt(p);
                p += id.size();
                if (id == "__attribute__" || id == "alignas" || id == "__declspec") {
                    p = skipSpace(p);
                    if (p < in.size() && in[p] == '(') p = matchParen(p);
                    if (p == std::string::npos) break;
                    continue;
                }
                last = id;
                continue;
            }
            if (in[p] == '(') break;
            if (in[p] == ';' || in[p] == '{') { last.clear(); break; }
            ++p;
        }
        // A template kernel cannot be looked up by a plain name: not registered.
        size_t back = out.size(), stop = out.find_last_of(";{}", back == 0 ? 0 : back - 1);
        std::string before = out.substr(stop == std::string::npos ? 0 : stop);
        bool isTemplate = before.find("template") != std::string::npos;
        if (!last.empty() && !isTemplate && seen.insert(last).second) kernels.push_back(last);
        out += std::string(strlen("__tessera_emu_global"), ' ');
        i += strlen("__tessera_emu_global");
    }

    static std::string stripAttributes(std::string type) {
        for (const char* attr : {"__attribute__", "alignas"}) {
            size_t at;
            while ((at = type.find(attr)) != std::string::npos) {
                size_t p = at + strlen(attr);
                while (p < type.size() && isspace((unsigned char)type[p])) ++p;
                int depth = 0;
                size_t e = p;
                for (; e < type.size(); ++e) {
                    if (type[e] == '(') ++depth;
                    if (type[e] == ')' && --depth == 0) { ++e; break; }
                }
                type.erase(at, e - at);
            }
        }
        return type;
    }

    void sharedMarker() {
        size_t markerLength = strlen("__tessera_emu_shared");
        std::string previous = previousIdent();
        if (previous == "extern") {
            // extern __shared__ T name[];  ->  static thread_local T* name = (T*)dynamicShared();
            size_t semicolon = in.find(';', i);
            std::string decl = in.substr(i + markerLength, semicolon == std::string::npos ? 0 : semicolon - i - markerLength);
            size_t bracket = decl.rfind('[');
            size_t nameEnd = bracket == std::string::npos ? 0 : bracket;
            while (nameEnd > 0 && isspace((unsigned char)decl[nameEnd - 1])) --nameEnd;
            size_t nameStart = nameEnd;
            while (nameStart > 0 && isIdent(decl[nameStart - 1])) --nameStart;
            if (semicolon == std::string::npos || bracket == std::string::npos || nameStart == nameEnd) {
                error = where() + ": the emulator understands `extern __shared__ T name[];` only";
                out += in.substr(i, markerLength);
                i += markerLength;
                return;
            }
            std::string name = decl.substr(nameStart, nameEnd - nameStart);
            std::string type = stripAttributes(decl.substr(0, nameStart));
            out.resize(out.rfind("extern"));
            out += "static thread_local " + type + "* " + name + " = (" + type +
                   "*)::__tessera_emu::rt->dynamicShared()";
            for (char c : decl)
                if (c == '\n') { out += '\n'; ++line; }
            i = semicolon;  // the ';' is copied next
            return;
        }
        out += previous == "static" ? "thread_local" : "static thread_local";
        i += markerLength;
    }

    // asm [volatile] ( "template" : outputs : inputs [: clobbers] ) ;
    void asmStatement(const std::string& keyword) {
        size_t p = skipSpace(i + keyword.size());
        while (isIdentStart(in[p])) {
            std::string q = identAt(p);
            if (q != "volatile" && q != "__volatile__" && q != "__volatile" && q != "inline" && q != "goto") break;
            p = skipSpace(p + q.size());
        }
        if (p >= in.size() || in[p] != '(') { out += keyword; i += keyword.size(); return; }
        size_t end = matchParen(p);
        if (end == std::string::npos) { error = where() + ": unbalanced asm"; i = in.size(); return; }
        std::string body = in.substr(p + 1, end - p - 2);
        std::string replacement;
        if (!translateAsm(body, replacement)) {
            if (error.empty()) error = where() + ": inline PTX the emulator cannot translate: asm(" + body + ")";
        }
        out += "{ " + replacement + " }";
        for (char c : body)
            if (c == '\n') { out += '\n'; ++line; }
        i = end;
    }

    // Splits `s` at top-level occurrences of `sep` (outside strings and brackets).
    static std::vector<std::string> splitTop(const std::string& s, char sep) {
        std::vector<std::string> parts;
        std::string current;
        int depth = 0;
        for (size_t k = 0; k < s.size(); ++k) {
            char c = s[k];
            if (c == '"') {
                size_t e = k + 1;
                while (e < s.size() && s[e] != '"') e += s[e] == '\\' ? 2 : 1;
                current += s.substr(k, e - k + 1);
                k = e;
                continue;
            }
            if (c == '(' || c == '[' || c == '{') ++depth;
            if (c == ')' || c == ']' || c == '}') --depth;
            if (c == sep && depth == 0) {
                if (sep == ':' && ((k + 1 < s.size() && s[k + 1] == ':') || (k > 0 && s[k - 1] == ':'))) {
                    current += c;
                    continue;
                }
                parts.push_back(current);
                current.clear();
                continue;
            }
            current += c;
        }
        parts.push_back(current);
        return parts;
    }

    static std::string trim(const std::string& s) {
        size_t a = s.find_first_not_of(" \t\n\r"), b = s.find_last_not_of(" \t\n\r");
        return a == std::string::npos ? "" : s.substr(a, b - a + 1);
    }

    // The concatenated text of adjacent string literals.
    static std::string literalText(const std::string& s) {
        std::string text;
        for (size_t k = 0; k < s.size(); ++k) {
            if (s[k] != '"') continue;
            for (++k; k < s.size() && s[k] != '"'; ++k) {
                if (s[k] == '\\' && k + 1 < s.size()) {
                    char e = s[++k];
                    text += e == 'n' ? '\n' : e == 't' ? '\t' : e;
                } else {
                    text += s[k];
                }
            }
        }
        return text;
    }

    bool translateAsm(const std::string& body, std::string& result) {
        std::vector<std::string> sections = splitTop(body, ':');
        std::string templ = literalText(sections[0]);
        std::vector<std::string> operands;  // expressions, outputs first
        for (size_t s = 1; s < sections.size() && s <= 2; ++s) {
            for (const std::string& part : splitTop(sections[s], ',')) {
                std::string op = trim(part);
                if (op.empty()) continue;
                size_t open = op.find('(', op.rfind('"') == std::string::npos ? 0 : op.rfind('"'));
                if (open == std::string::npos || op.back() != ')') return false;
                operands.push_back(op.substr(open + 1, op.size() - open - 2));
            }
        }
        for (std::string instruction : splitTop(templ, ';')) {
            for (char& c : instruction)
                if (c == '\n' || c == '\t') c = ' ';
            instruction = trim(instruction);
            if (instruction.empty()) continue;
            if (instruction[0] == '{' || instruction[0] == '}' || instruction[0] == '@' || instruction[0] == '.')
                return false;
            size_t space = instruction.find(' ');
            std::string opcode = instruction.substr(0, space);
            for (char& c : opcode)
                if (c == '.') c = '_';
            std::vector<std::string> args;
            if (space != std::string::npos) {
                for (const std::string& part : splitTop(instruction.substr(space + 1), ',')) {
                    std::string a = trim(part);
                    bool memory = !a.empty() && a[0] == '[';
                    if (memory) a = trim(a.substr(1, a.size() - 2));
                    if (a.size() > 1 && a[0] == '%' && isdigit((unsigned char)a[1])) {
                        size_t index = (size_t)atoi(a.c_str() + 1);
                        if (index >= operands.size()) return false;
                        a = "(" + operands[index] + ")";
                    } else if (a.size() > 1 && a[0] == '%') {
                        a = "__ptx::sreg_" + a.substr(1) + "()";
                    } else if (a.size() == 10 && a[0] == '0' && (a[1] == 'f' || a[1] == 'F')) {
                        a = "__uint_as_float(0x" + a.substr(2) + "u)";
                    } else if (a.empty() || a[0] == '{') {
                        return false;
                    }
                    args.push_back(a);
                }
            }
            result += "__ptx::" + opcode + "(";
            for (size_t k = 0; k < args.size(); ++k) result += (k ? ", " : "") + args[k];
            result += "); ";
        }
        return true;
    }

    void process() {
        bool lineStart = true;
        while (i < in.size()) {
            char c = in[i];
            if (lineStart && c == '#') { lineMarker(); continue; }
            if (c == '\n') { out += c; ++i; ++line; lineStart = true; continue; }
            if (!isspace((unsigned char)c)) lineStart = false;
            if (c == '"' || c == '\'') {
                // Raw strings R"x(...)x" only appear in system headers, if at all: copied as they are.
                copyLiteral();
                continue;
            }
            if (isIdentStart(c) && (i == 0 || !isIdent(in[i - 1]))) {
                std::string id = identAt(i);
                if (id == "__tessera_emu_global") { kernelMarker(); continue; }
                if (id == "__tessera_emu_shared") { sharedMarker(); continue; }
                if (!systemFile && (id == "asm" || id == "__asm__" || id == "__asm")) { asmStatement(id); continue; }
                out += id;
                i += id.size();
                continue;
            }
            out += c;
            ++i;
        }
    }
};

std::string hex64(uint64_t v) {
    char buffer[17];
    snprintf(buffer, sizeof buffer, "%016llx", (unsigned long long)v);
    return buffer;
}

uint64_t fnv1a(const std::string& text, uint64_t hash = 0xcbf29ce484222325ull) {
    for (unsigned char c : text) { hash ^= c; hash *= 0x100000001b3ull; }
    return hash;
}

const std::string& emulatorVersion() {
    static std::once_flag once;
    static std::string version;
    std::call_once(once, [] {
        std::string compilerVersion;
        run(shellQuote(compiler()) + " --version", compilerVersion);
        const char* flags = getenv("TESSERA_CUDA_EMU_CXXFLAGS");
        uint64_t h = fnv1a(kAbiHeader);
        h = fnv1a(kKernelHeader, h);
        h = fnv1a(kHalfHeader, h);
        h = fnv1a(compiler() + "\n" + compilerVersion + "\n" + (flags ? flags : ""), h);
        h = fnv1a(TESSERA_EMU_SOURCE_ID, h);  // this library's sources (build.sh)
        version = "emulator-" + hex64(h).substr(0, 12);
    });
    return version;
}

int compile(Program& program, int optionCount, const char* const* options) {
    std::string arch = "sm_90", defines, includes;
    for (int k = 0; k < optionCount; ++k) {
        std::string o = options[k] ? options[k] : "";
        auto value = [&](const std::string& prefix, std::string& out) {
            if (o.compare(0, prefix.size(), prefix) != 0) return false;
            if (o.size() > prefix.size()) out = o.substr(prefix.size());
            else if (k + 1 < optionCount) out = options[++k];
            return true;
        };
        std::string v;
        if (value("--gpu-architecture=", v) || value("-arch=", v) || value("--gpu-architecture", v) ||
            value("-arch", v)) arch = v;
        else if (value("--define-macro=", v) || value("-D", v)) defines += " -D" + shellQuote(v);
        else if (value("--include-path=", v) || value("-I", v)) includes += " -I" + shellQuote(v);
        else if (value("--pre-include=", v) || value("-include", v)) includes += " -include " + shellQuote(v);
    }
    int archNumber = 0;
    {
        const char* digits = arch.c_str();
        while (*digits && !isdigit((unsigned char)*digits)) ++digits;
        archNumber = atoi(digits) * 10;
        if (archNumber == 0) {
            program.log = "emulator: unknown --gpu-architecture " + arch + "\n";
            return NVRTC_ERROR_INVALID_OPTION;
        }
    }

    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/tessera-nvrtc-emu-XXXXXX";
    std::vector<char> dirBuffer(pattern.begin(), pattern.end());
    dirBuffer.push_back(0);
    if (!mkdtemp(dirBuffer.data())) {
        program.log = "emulator: cannot create a work folder under " + pattern + "\n";
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
    std::string dir = dirBuffer.data();
    std::string sourceName = program.name.empty() ? "kernel.cu" : program.name;
    for (char& c : sourceName)
        if (c == '/') c = '_';
    bool ok = writeFile(dir + "/emu_abi.h", kAbiHeader) && writeFile(dir + "/emu_kernel.h", kKernelHeader) &&
              writeFile(dir + "/emu_half.h", kHalfHeader) &&
              writeFile(dir + "/" + sourceName, program.source);
    for (auto& header : program.headers) ok = ok && writeFile(dir + "/" + header.first, header.second);
    if (!ok) {
        program.log = "emulator: cannot write into " + dir + "\n";
        removeTree(dir);
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
    const char* extra = getenv("TESSERA_CUDA_EMU_CXXFLAGS");
    std::string cxx = shellQuote(compiler());
    std::string common = " -std=c++17 -w -D__CUDACC__ -D__CUDACC_RTC__ -D__CUDA_ARCH__=" +
                         std::to_string(archNumber) + defines + " -I" + shellQuote(dir) + includes;
    std::string output;
    int status = run(cxx + " -E -x c++" + common + " -include " + shellQuote(dir + "/emu_kernel.h") + " " +
                         shellQuote(dir + "/" + sourceName) + " -o " + shellQuote(dir + "/pre.ii"),
                     output);
    std::string preprocessed;
    if (status != 0 || !readFile(dir + "/pre.ii", preprocessed)) {
        program.log = output.empty() ? "emulator: the preprocessor failed\n" : output;
        removeTree(dir);
        return NVRTC_ERROR_COMPILATION;
    }
    Rewriter rewriter(preprocessed);
    rewriter.process();
    if (!rewriter.error.empty()) {
        program.log = "emulator: " + rewriter.error + "\n";
        removeTree(dir);
        return NVRTC_ERROR_COMPILATION;
    }
    std::string text = rewriter.out + "\n// Launchers appended by libnvrtc_emu.so\n";
    for (const std::string& k : rewriter.kernels) {
        text += "extern \"C\" void __tessera_emu_launch_" + k + "(void** p) { ::__tessera_emu::invoke(&" + k + ", p); }\n";
        text += "extern \"C\" const ::__tessera_emu::KernelInfo* __tessera_emu_info_" + k +
                "() { return ::__tessera_emu::info(&" + k + "); }\n";
    }
    if (!writeFile(dir + "/module.ii", text)) {
        program.log = "emulator: cannot write into " + dir + "\n";
        removeTree(dir);
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
    output.clear();
    status = run(cxx + " -x c++-cpp-output -std=c++17 -w -O1 -fPIC -shared -fwrapv -fno-strict-aliasing "
                       "-fno-math-errno -g0 " + (extra ? std::string(extra) : "") + " " +
                     shellQuote(dir + "/module.ii") + " -o " + shellQuote(dir + "/module.so") + " -lm",
                 output);
    std::string library;
    if (status != 0 || !readFile(dir + "/module.so", library)) {
        program.log = output.empty() ? "emulator: the host compiler failed\n" : output;
        if (getenv("TESSERA_CUDA_EMU_KEEP")) program.log += "\nemulator: work folder " + dir + "\n";
        else removeTree(dir);
        return NVRTC_ERROR_COMPILATION;
    }
    program.log = output;  // host-compiler warnings are off (-w): usually empty
    if (getenv("TESSERA_CUDA_EMU_KEEP")) program.log += "emulator: work folder " + dir + "\n";
    else removeTree(dir);
    program.image = tessera_emu_wrap_image(library);
    return NVRTC_SUCCESS;
}

}  // namespace

extern "C" {

typedef Program* nvrtcProgram;

// The emulator's identity: Tessera adds it to its kernel cache key so that
// emulated modules and real CUBINs never mix.
const char* tessera_emu_nvrtc_version() { return emulatorVersion().c_str(); }

int nvrtcVersion(int* major, int* minor) {
    if (!major || !minor) return NVRTC_ERROR_INVALID_INPUT;
    *major = 12;
    *minor = 9;
    return NVRTC_SUCCESS;
}

int nvrtcGetNumSupportedArchs(int* count) {
    if (!count) return NVRTC_ERROR_INVALID_INPUT;
    *count = 6;
    return NVRTC_SUCCESS;
}

int nvrtcGetSupportedArchs(int* archs) {
    if (!archs) return NVRTC_ERROR_INVALID_INPUT;
    const int list[] = {75, 80, 86, 89, 90, 100};
    memcpy(archs, list, sizeof list);
    return NVRTC_SUCCESS;
}

const char* nvrtcGetErrorString(int result) {
    switch (result) {
    case NVRTC_SUCCESS: return "NVRTC_SUCCESS";
    case NVRTC_ERROR_OUT_OF_MEMORY: return "NVRTC_ERROR_OUT_OF_MEMORY";
    case NVRTC_ERROR_PROGRAM_CREATION_FAILURE: return "NVRTC_ERROR_PROGRAM_CREATION_FAILURE";
    case NVRTC_ERROR_INVALID_INPUT: return "NVRTC_ERROR_INVALID_INPUT";
    case NVRTC_ERROR_INVALID_PROGRAM: return "NVRTC_ERROR_INVALID_PROGRAM";
    case NVRTC_ERROR_INVALID_OPTION: return "NVRTC_ERROR_INVALID_OPTION";
    case NVRTC_ERROR_COMPILATION: return "NVRTC_ERROR_COMPILATION";
    case NVRTC_ERROR_BUILTIN_OPERATION_FAILURE: return "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE";
    case NVRTC_ERROR_INTERNAL_ERROR: return "NVRTC_ERROR_INTERNAL_ERROR";
    default: return "NVRTC_ERROR unknown";
    }
}

int nvrtcCreateProgram(nvrtcProgram* program, const char* source, const char* name, int headerCount,
                       const char* const* headers, const char* const* includeNames) {
    if (!program || !source || headerCount < 0) return NVRTC_ERROR_INVALID_INPUT;
    Program* p = new Program;
    p->source = source;
    p->name = name ? name : "kernel.cu";
    for (int k = 0; k < headerCount; ++k) {
        if (!headers || !includeNames || !headers[k] || !includeNames[k]) { delete p; return NVRTC_ERROR_INVALID_INPUT; }
        p->headers.emplace_back(includeNames[k], headers[k]);
    }
    *program = p;
    return NVRTC_SUCCESS;
}

int nvrtcDestroyProgram(nvrtcProgram* program) {
    if (!program) return NVRTC_ERROR_INVALID_INPUT;
    delete *program;
    *program = nullptr;
    return NVRTC_SUCCESS;
}

int nvrtcCompileProgram(nvrtcProgram program, int optionCount, const char* const* options) {
    if (!program || optionCount < 0) return NVRTC_ERROR_INVALID_PROGRAM;
    return compile(*program, optionCount, options);
}

static int copySize(nvrtcProgram program, size_t* size, size_t value) {
    if (!program || !size) return NVRTC_ERROR_INVALID_INPUT;
    *size = value;
    return NVRTC_SUCCESS;
}

int nvrtcGetProgramLogSize(nvrtcProgram program, size_t* size) {
    return copySize(program, size, program ? program->log.size() + 1 : 0);
}

int nvrtcGetProgramLog(nvrtcProgram program, char* log) {
    if (!program || !log) return NVRTC_ERROR_INVALID_INPUT;
    memcpy(log, program->log.c_str(), program->log.size() + 1);
    return NVRTC_SUCCESS;
}

int nvrtcGetCUBINSize(nvrtcProgram program, size_t* size) {
    return copySize(program, size, program ? program->image.size() : 0);
}

int nvrtcGetCUBIN(nvrtcProgram program, char* cubin) {
    if (!program || !cubin) return NVRTC_ERROR_INVALID_INPUT;
    if (program->image.empty()) return NVRTC_ERROR_INVALID_PROGRAM;
    memcpy(cubin, program->image.data(), program->image.size());
    return NVRTC_SUCCESS;
}

// PTX requests get the same module image (the emulated cuModuleLoadData takes it).
int nvrtcGetPTXSize(nvrtcProgram program, size_t* size) { return nvrtcGetCUBINSize(program, size); }
int nvrtcGetPTX(nvrtcProgram program, char* ptx) { return nvrtcGetCUBIN(program, ptx); }

}  // extern "C"
