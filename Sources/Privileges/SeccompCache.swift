// The spec's seccomp profile compiled to a classic BPF program by the
// runtime, on the host's side, for the container's init (or an exec'd
// process), which receives the bytes from it and only calls seccomp(2):
// nothing is read from the host after pivot_root, in the container's
// hostile root.
//
// Compiling takes libseccomp a few milliseconds for a Docker-sized profile,
// so programs are cached under the state root (--root), one file per
// filter, named by the FNV-1a 64 hash of the filter's canonical description
// (the plan, libseccomp's version, the native architecture). The file holds
// that description too, compared byte for byte before its program is used:
// a hash collision or a damaged file is never loaded, only rebuilt. (A
// cryptographic hash would buy nothing here, the full comparison decides,
// and SHA-256 of the 10 KB description cost 60 to 100 us per create.)

import Glibc
import CSeccomp
import CShim
import Spec
import Sys

extension Privileges {
    /// A compiled filter: struct sock_filter bytes and seccomp(2) flags.
    public struct SeccompProgram: Equatable {
        public var instructions: [UInt8]
        public var flags: UInt32
        public var count: Int { instructions.count / 8 }
        public init(instructions: [UInt8], flags: UInt32) { self.instructions = instructions; self.flags = flags }
    }

    static let cacheMagic = "minicontainer seccomp bpf 2\n"
    /// BPF_MAXINSNS: the kernel refuses longer classic programs.
    static let maxInstructions = 4096

    /// seccomp(2)'s SECCOMP_FILTER_FLAG_* for the spec's flags.
    static func seccompSyscallFlags(_ flags: [SeccompFlag]) throws -> UInt32 {
        var out: UInt32 = 0
        for f in flags {
            switch f {
            case .tsync: out |= 1       // SECCOMP_FILTER_FLAG_TSYNC
            case .log: out |= 2         // SECCOMP_FILTER_FLAG_LOG
            case .specAllow: out |= 4   // SECCOMP_FILTER_FLAG_SPEC_ALLOW
            case .waitKillableRecv:
                // Meaningful only with a notify listener, which we refuse.
                throw SysError("seccomp flag \(f.rawValue) is not supported by this libseccomp", errno: EOPNOTSUPP)
            }
        }
        return out
    }

    /// The canonical description of the filter a profile compiles to: every
    /// field of the spec's Seccomp (the plan, and so the BPF libseccomp
    /// writes, is a function of them), libseccomp's version and the native
    /// architecture. Built from the Seccomp itself, so that a cache hit
    /// costs no plan (that took ~0.1 ms of a create for Docker's profile).
    /// Names are length-prefixed and optional values marked, so no two
    /// profiles share a text. A field added to Seccomp, Syscall or
    /// SyscallArg must be added here (SeccompProfileTests counts them).
    static func seccompCacheKey(_ s: Seccomp, libseccomp: String, nativeArch: UInt32) -> [UInt8] {
        var t: [UInt8] = []
        t.reserveCapacity(16 * (s.syscalls ?? []).reduce(0) { $0 + $1.names.count } + 512)
        func number(_ n: UInt64) {
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                          UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var k = 0
            var v = n
            withUnsafeMutableBytes(of: &digits) { d in
                repeat { d[k] = 48 + UInt8(v % 10); v /= 10; k += 1 } while v > 0
                while k > 0 { k -= 1; t.append(d[k]) }
            }
        }
        func name(_ x: String) {  // "4:read"
            var x = x
            x.withUTF8 { u in number(UInt64(u.count)); t.append(58); t.append(contentsOf: u) }
        }
        func optional(_ n: UInt64?) { if let n = n { number(n) } else { t.append(45) } }                    // "-" for none
        func optional(_ x: String?) { if let x = x { name(x) } else { t.append(45) } }
        func list(_ tag: StaticString, _ xs: [String]?) {
            text(tag)
            if let xs = xs { number(UInt64(xs.count)); for x in xs { t.append(32); name(x) } } else { t.append(45) }
            t.append(10)
        }
        func text(_ x: StaticString) { t.append(contentsOf: UnsafeBufferPointer(start: x.utf8Start, count: x.utf8CodeUnitCount)) }
        name(cacheMagic)
        text("libseccomp "); name(libseccomp)
        text("\nnative "); number(UInt64(nativeArch))
        text("\ndefault "); name(s.defaultAction); t.append(32); optional(s.defaultErrnoRet.map(UInt64.init)); t.append(10)
        list("arches ", s.architectures)
        list("flags ", s.flags)
        text("listener "); optional(s.listenerPath); t.append(32); optional(s.listenerMetadata); t.append(10)
        if let calls = s.syscalls {
            text("syscalls "); number(UInt64(calls.count)); t.append(10)
            for c in calls {
                text("action "); name(c.action); t.append(32); optional(c.errnoRet.map(UInt64.init)); t.append(10)
                if let args = c.args {
                    text("args "); number(UInt64(args.count))
                    for a in args {
                        t.append(32); number(UInt64(a.index)); t.append(44); name(a.op); t.append(44)
                        number(a.value); t.append(44); optional(a.valueTwo)
                    }
                } else {
                    text("args -")
                }
                t.append(10)
                list("names ", c.names)
            }
        } else {
            text("syscalls -\n")
        }
        return t
    }

    public static var libseccompVersion: String {
        guard let v = seccomp_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.micro)"
    }

    /// A cache file: the magic, the key's length, the key, the program.
    static func encodeCacheFile(key: [UInt8], program: [UInt8]) -> [UInt8] {
        Array("\(cacheMagic)\(key.count)\n".utf8) + key + program
    }

    /// The program in a cache file made for `key`; nil for anything else
    /// (another key, a truncated or malformed file).
    static func decodeCacheFile(_ bytes: [UInt8], key k: [UInt8]) -> [UInt8]? {
        let magic = Array(cacheMagic.utf8)
        guard bytes.count > magic.count, Array(bytes[0..<magic.count]) == magic else { return nil }
        var i = magic.count
        var length = 0
        let digitsStart = i
        while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57, i - digitsStart < 8 {
            length = length * 10 + Int(bytes[i] - 48)
            i += 1
        }
        guard i > digitsStart, i < bytes.count, bytes[i] == 10 else { return nil }
        i += 1
        guard length == k.count, bytes.count - i >= length else { return nil }
        if length > 0 {
            let same = bytes.withUnsafeBytes { b in k.withUnsafeBytes { memcmp(b.baseAddress! + i, $0.baseAddress!, length) == 0 } }
            guard same else { return nil }
        }
        let program = Array(bytes[(i + length)...])
        guard !program.isEmpty, program.count % 8 == 0, program.count / 8 <= maxInstructions else { return nil }
        return program
    }

    /// Compiles `seccomp`, through the cache in `cacheDir` when given
    /// (created 0700; not used unless it is a directory of ours that
    /// nobody else may write). A cache that cannot be read or written
    /// costs a compile, never an error.
    public static func compileSeccomp(_ seccomp: Seccomp, cacheDir: String?) throws -> SeccompProgram {
        var path: String? = nil
        var key: [UInt8] = []
        if let dir = cacheDir, usableCacheDirectory(dir) {
            let (k, p) = cacheEntry(seccomp, dir)
            if let program = cached(seccomp, path: p, key: k) { return program }
            key = k
            path = p
        }
        let plan = try SeccompPlan(seccomp)
        let flags = try seccompSyscallFlags(plan.flags)
        let program = try exportSeccomp(plan, seccomp)
        if let p = path {
            do { try FS.writeAtomically(p, encodeCacheFile(key: key, program: program), mode: 0o600) } catch {
                Log.debugLine("seccomp cache: \(error)")
            }
        }
        return SeccompProgram(instructions: program, flags: flags)
    }

    /// The program the cache in `cacheDir` holds for `seccomp`; nil when it
    /// holds none or cannot be used. Never compiles (the init's early read,
    /// Runtime/Init.swift); never makes the directory.
    public static func cachedSeccomp(_ seccomp: Seccomp, cacheDir: String) -> SeccompProgram? {
        var st = stat()
        guard lstat(cacheDir, &st) == 0, isOurs(st, S_IFDIR) else { return nil }
        let (key, path) = cacheEntry(seccomp, cacheDir)
        return cached(seccomp, path: path, key: key)
    }

    /// The key and file of `seccomp`'s entry in `dir`.
    static func cacheEntry(_ seccomp: Seccomp, _ dir: String) -> (key: [UInt8], path: String) {
        let key = seccompCacheKey(seccomp, libseccomp: libseccompVersion, nativeArch: seccomp_arch_native())
        return (key, dir + "/" + hex16(fnv1a64(key)) + ".bpf")
    }

    static func cached(_ seccomp: Seccomp, path: String, key: [UInt8]) -> SeccompProgram? {
        guard let bytes = readCacheFile(path), let program = decodeCacheFile(bytes, key: key),
              // Only a profile that compiled has a file: its flags are known.
              let flags = try? seccompSyscallFlags(seccompFlags(seccomp)) else { return nil }
        return SeccompProgram(instructions: program, flags: flags)
    }

    /// A file of `type` of ours that nobody else may write.
    static func isOurs(_ st: stat, _ type: mode_t) -> Bool {
        st.st_mode & S_IFMT == type && st.st_uid == geteuid() && st.st_mode & 0o077 == 0
    }

    /// The BPF libseccomp generates for `plan` (seccomp_export_bpf into a memfd).
    static func exportSeccomp(_ plan: SeccompPlan, _ seccomp: Seccomp) throws -> [UInt8] {
        try withSeccompContext(plan, seccomp) { ctx in
            let fd = mc_memfd_sealable("seccomp-bpf")
            guard fd >= 0 else { throw SysError("seccomp: memfd_create") }
            defer { close(fd) }
            let rc = seccomp_export_bpf(ctx, fd)
            if rc != 0 { throw SysError("seccomp: export the filter", errno: -rc) }
            let size = lseek(fd, 0, SEEK_END)
            guard size > 0, size % 8 == 0, Int(size) / 8 <= maxInstructions else {
                throw SysError("seccomp: the filter has \(size / 8) instructions (the kernel takes 1 to \(maxInstructions))", errno: E2BIG)
            }
            var out = [UInt8](repeating: 0, count: Int(size))
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            guard n == Int(size) else { throw SysError("seccomp: read the exported filter") }
            return out
        }
    }

    static func usableCacheDirectory(_ dir: String) -> Bool {
        var st = stat()
        if lstat(dir, &st) != 0 {
            if mkdir(dir, 0o700) != 0 && errno != EEXIST {
                Log.debugLine("seccomp cache: mkdir \(dir): \(errnoText(errno))")
                return false
            }
            guard lstat(dir, &st) == 0 else { return false }
        }
        guard isOurs(st, S_IFDIR) else {
            Log.debugLine("seccomp cache: \(dir) is not a directory of ours with mode 0700, not used")
            return false
        }
        return true
    }

    /// A regular file of ours that nobody else may write, not too long.
    static func readCacheFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, isOurs(st, S_IFREG),
              st.st_size > 0, st.st_size <= 1 << 20 else { return nil }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n == out.count ? out : nil
    }

    /// Loads a compiled filter with seccomp(2). Like seccomp_load, this
    /// needs no_new_privs set before, or CAP_SYS_ADMIN still held.
    public static func loadSeccompProgram(_ p: SeccompProgram) throws {
        let rc = p.instructions.withUnsafeBytes { mc_seccomp_set_filter(p.flags, $0.baseAddress, UInt16(p.count)) }
        if rc < 0 {
            let e = errno
            throw SysError(e == EACCES ? "load seccomp filter (without no_new_privs this needs CAP_SYS_ADMIN)" : "load seccomp filter", errno: e)
        }
        if rc > 0 { throw SysError("load seccomp filter: thread \(rc) could not be synchronized (TSYNC)", errno: ESRCH) }
    }
}
