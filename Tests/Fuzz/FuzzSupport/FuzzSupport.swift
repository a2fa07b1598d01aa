// What the fuzz targets share: a Host that answers from memory (compile
// and the parse functions never see the real system), and the NUL-split
// argv of an input.

import Compile

/// A made-up host: paths that start with "/" and do not contain "missing"
/// exist (as themselves, cleaned of a trailing slash), those ending in "dir"
/// or "rootfs" are directories; HOME and TERM are set; the rootfs's
/// /etc/passwd and /etc/group are small fixed tables.
public let fakeHost = Host(
    realPath: { p in
        guard p.hasPrefix("/") || p.hasPrefix("."), !p.contains("missing") else { return nil }
        let abs = p.hasPrefix("/") ? p : "/fuzz/cwd/" + p
        return abs.count > 1 && abs.hasSuffix("/") ? String(abs.dropLast()) : abs
    },
    isDirectory: { $0.hasSuffix("dir") || $0.hasSuffix("rootfs") || $0 == "/" },
    environment: { ["HOME": "/root", "TERM": "xterm"][$0] },
    readFile: { path in
        if path.hasSuffix("/etc/passwd") {
            return "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nbad:x:notanumber:1::/:\nshort:x\n"
        }
        if path.hasSuffix("/etc/group") { return "root:x:0:\nnogroup:x:65534:\nwheel:x:10:root\nodd:x:-1:\n" }
        return nil
    }
)

/// The input as text (invalid UTF-8 repaired, as String(decoding:) does).
public func text(_ data: UnsafePointer<UInt8>?, _ size: Int) -> String {
    String(decoding: bytes(data, size), as: UTF8.self)
}

/// The input as an argv: its NUL-separated parts (a trailing NUL ends the
/// last one; empty arguments are kept, as a shell can pass them).
public func argv(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [String] {
    var b = bytes(data, size)
    if b.last == 0 { b.removeLast() }
    if b.isEmpty { return [] }
    return b.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
}

// MARK: the driver

import Glibc

/// libFuzzer's driver (libclang_rt.fuzzer), for a program with a main of
/// its own: SwiftPM links an executable target's entry point as main, so
/// libFuzzer's main is not used.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// Runs libFuzzer with this process's arguments on `target` (a target's
/// LLVMFuzzerTestOneInput) and exits with its status.
public func runFuzzer(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}

/// The input's bytes (libFuzzer may pass a null pointer for an empty one).
public func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let d = data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: d, count: size))
}

/// Traps unless `value`, written by `write` and read back by `read`, is
/// the same value (`what` names it in the message).
public func checkRoundTrip<T: Equatable>(_ value: T, _ what: String,
                                         write: (T) throws -> String, read: ([UInt8]) throws -> T) {
    do {
        let text = try write(value)
        if try read(Array(text.utf8)) != value { fatalError("round trip changed the \(what):\n\(text)") }
    } catch {
        fatalError("round trip failed: \(error)")
    }
}
