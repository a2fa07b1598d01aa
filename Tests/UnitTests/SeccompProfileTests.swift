import XCTest
import Glibc
import CSeccomp
import JSON
import Spec
import Sys
@testable import Compile
@testable import Privileges

// The default seccomp profile: the generated table is the checked-in JSON,
// capabilities decide what is allowed, the result is deterministic; the
// hash and the compiled-filter cache (compiling needs no root).

private let repoRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

private func makeTemp() -> String {
    var template = Array("/tmp/mc-seccomp-unit-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(p != nil, "mkdtemp failed")
    return String(cString: p!)
}

private func removeFlat(_ dir: String) {
    for name in FS.listDirectory(dir) { unlink(dir + "/" + name) }
    rmdir(dir)
}

/// Names allowed without conditions, and every (action, errno) a name gets elsewhere.
private func split(_ s: Seccomp) -> (allowed: Set<String>, other: [String: [String]]) {
    var allowed = Set<String>(), other: [String: [String]] = [:]
    for r in s.syscalls ?? [] {
        for n in r.names {
            if r.action == "SCMP_ACT_ALLOW" && r.args == nil { allowed.insert(n) } else {
                other[n, default: []].append("\(r.action)/\(r.errnoRet.map { "\($0)" } ?? "-")/\(r.args?.count ?? 0)")
            }
        }
    }
    return (allowed, other)
}

final class SeccompProfileTests: XCTestCase {
    let sysAdmin = runCapabilities + ["CAP_SYS_ADMIN"]

    // MARK: the table

    func testGeneratedTableIsUpToDate() throws {
        let bytes = try FS.readBytes(repoRoot + "/Specs/seccomp/default.json")
        XCTAssertEqual(SHA256.hex(bytes), defaultSeccompTableSourceSHA256,
                       "Specs/seccomp/default.json changed: run scripts/gen-seccomp.py and commit the Swift it writes")
        // And the Swift says what the JSON says (a hand edit of the generated file).
        let doc = try JSONValue.parse(bytes, file: "default.json")
        guard case .array(let entries)? = doc["syscalls"] else { return XCTFail("no syscalls") }
        XCTAssertEqual(entries.count, defaultSeccompTable.entries.count)
        func strings(_ v: JSONValue?) -> [String] {
            guard case .array(let a)? = v else { return [] }
            return a.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        for (e, t) in zip(entries, defaultSeccompTable.entries) {
            XCTAssertEqual(strings(e["names"]), t.names)
            XCTAssertEqual(e["action"], .string(t.action))
            XCTAssertEqual(strings(e["includes"]?["caps"]), t.includesCaps)
            XCTAssertEqual(strings(e["excludes"]?["caps"]), t.excludesCaps)
        }
        XCTAssertEqual(doc["defaultErrnoRet"], .int(38))
    }

    func testEveryNameIsOneLibseccompKnowsOrADocumentedNewOne() {
        // Newer than Debian 12's libseccomp 2.5.4: allowed by name, skipped
        // by the loader until libseccomp knows them (README.md).
        let newer: Set<String> = ["uretprobe", "uprobe", "statmount", "listmount", "lsm_get_self_attr", "lsm_set_self_attr",
                                  "lsm_list_modules", "mseal", "setxattrat", "getxattrat", "listxattrat", "removexattrat",
                                  "open_tree_attr", "file_getattr", "file_setattr"]
        for e in defaultSeccompTable.entries {
            for n in e.names where seccomp_syscall_resolve_name(n) < 0 {
                XCTAssertTrue(newer.contains(n), "\(n) is unknown to libseccomp and not on the list of newer syscalls")
            }
        }
    }

    // MARK: capabilities

    func testDefaultCapabilitiesDenyNamespacesMountsAndClone3() throws {
        let p = defaultSeccompProfile(capabilities: runCapabilities)
        XCTAssertEqual(p.defaultAction, "SCMP_ACT_ERRNO")
        XCTAssertEqual(p.defaultErrnoRet, 38)
        XCTAssertEqual(p.architectures, ["SCMP_ARCH_X86_64"])
        let (allowed, other) = split(p)
        for n in ["read", "write", "openat", "execve", "futex", "socket", "chroot", "mknod", "setuid", "wait4", "rt_sigreturn"] {
            XCTAssertTrue(allowed.contains(n), n)
        }
        for n in ["mount", "umount2", "unshare", "setns", "pivot_root", "clone", "clone3", "ptrace", "bpf", "reboot",
                  "init_module", "kexec_load", "open_by_handle_at", "io_uring_setup", "keyctl", "settimeofday", "syslog"] {
            XCTAssertFalse(allowed.contains(n), n)
        }
        for n in ["mount", "unshare", "setns", "ptrace", "bpf", "reboot", "kexec_load", "open_by_handle_at"] {
            XCTAssertEqual(other[n], ["SCMP_ACT_ERRNO/1/0"], n)
        }
        XCTAssertEqual(other["clone3"], ["SCMP_ACT_ERRNO/38/0"])
        // clone: allowed without CLONE_NEW* flags, EPERM with any of them.
        XCTAssertEqual(other["clone"]?.sorted(), ["SCMP_ACT_ALLOW/-/1", "SCMP_ACT_ERRNO/1/7"])
        let cloneAllow = p.syscalls!.first { $0.names == ["clone"] && $0.action == "SCMP_ACT_ALLOW" }!
        XCTAssertEqual(cloneAllow.args, [SyscallArg(index: 0, value: 0x7E02_0000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ")])
        XCTAssertNil(other["io_uring_setup"], "not named: the default ENOSYS")
    }

    func testSysAdminAllowsNamespacesMountsAndClone3() {
        let (allowed, other) = split(defaultSeccompProfile(capabilities: sysAdmin))
        for n in ["mount", "umount2", "unshare", "setns", "pivot_root", "clone", "clone3", "bpf", "perf_event_open", "syslog",
                  "fsopen", "move_mount", "sethostname"] {
            XCTAssertTrue(allowed.contains(n), n)
            XCTAssertNil(other[n], n)
        }
        XCTAssertFalse(allowed.contains("ptrace"))
        XCTAssertEqual(other["kexec_load"], ["SCMP_ACT_ERRNO/1/0"], "never, even with CAP_SYS_ADMIN")
    }

    func testEachGatedCapabilityAllowsItsCalls() {
        let gated = ["CAP_SYS_PTRACE": ["ptrace", "process_vm_readv", "kcmp", "pidfd_getfd"], "CAP_SYS_BOOT": ["reboot"],
                     "CAP_SYS_TIME": ["settimeofday", "clock_settime"], "CAP_SYS_MODULE": ["init_module", "finit_module", "delete_module"],
                     "CAP_SYS_RAWIO": ["iopl", "ioperm"], "CAP_SYS_PACCT": ["acct"], "CAP_BPF": ["bpf"], "CAP_PERFMON": ["perf_event_open"],
                     "CAP_SYSLOG": ["syslog"], "CAP_DAC_READ_SEARCH": ["open_by_handle_at"], "CAP_SYS_NICE": ["move_pages"],
                     "CAP_SYS_TTY_CONFIG": ["vhangup"]]
        for (cap, calls) in gated {
            let (without, _) = split(defaultSeccompProfile(capabilities: runCapabilities))
            let (with, other) = split(defaultSeccompProfile(capabilities: runCapabilities + [cap]))
            for n in calls {
                XCTAssertFalse(without.contains(n), "\(n) without \(cap)")
                XCTAssertTrue(with.contains(n), "\(n) with \(cap)")
                XCTAssertNil(other[n], "\(n) with \(cap) has no other rule")
            }
        }
        XCTAssertFalse(split(defaultSeccompProfile(capabilities: [])).allowed.contains("chroot"))
    }

    /// No capability set makes the table both allow a name without
    /// conditions and give it another rule (the profile builder would
    /// silently let the allow win).
    func testNoCapabilitySetContradictsTheTable() {
        var sets: [[String]] = [[], runCapabilities, Privileges.capabilityNames, sysAdmin]
        for c in Privileges.capabilityNames { sets.append([c]); sets.append(runCapabilities + [c]) }
        for caps in sets {
            let set = Set(caps)
            let entries = defaultSeccompTable.entries.filter { $0.applies(to: set) }
            let plain = Set(entries.filter { $0.action == "SCMP_ACT_ALLOW" && $0.args.isEmpty }.flatMap { $0.names })
            for e in entries where !(e.action == "SCMP_ACT_ALLOW" && e.args.isEmpty) {
                for n in e.names { XCTAssertFalse(plain.contains(n), "\(n) both allowed and \(e.action) with \(caps)") }
            }
        }
    }

    // MARK: shape and determinism

    func testFewEntriesSortedAndDeterministic() throws {
        let a = defaultSeccompProfile(capabilities: runCapabilities)
        let b = defaultSeccompProfile(capabilities: runCapabilities.reversed())
        XCTAssertEqual(a, b)
        XCTAssertEqual(try JSONEncoding.encode(a).pretty(), try JSONEncoding.encode(b).pretty())
        let rules = a.syscalls!
        XCTAssertEqual(rules[0].action, "SCMP_ACT_ALLOW")
        XCTAssertNil(rules[0].args)
        XCTAssertGreaterThan(rules[0].names.count, 300)
        XCTAssertLessThanOrEqual(rules.count, 8, "\(rules.map { $0.names.prefix(2) })")
        for r in rules { XCTAssertEqual(r.names, r.names.sorted()) }
        let all = rules.flatMap { $0.names }
        XCTAssertEqual(Set(rules[0].names).count, rules[0].names.count)
        XCTAssertTrue(all.contains("kexec_load"))
        // The loader takes it: every action, operator and flag is known.
        let plan = try Privileges.SeccompPlan(a)
        XCTAssertGreaterThan(plan.rules.count, 300)
    }

    // MARK: hash and cache

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        var h = SHA256()
        h.update("ab".utf8)
        h.update("c".utf8)
        XCTAssertEqual(h.finish(), SHA256.hash("abc".utf8))
    }

    func testCacheKeyDependsOnEveryInput() throws {
        let profile = defaultSeccompProfile(capabilities: runCapabilities)
        func key(_ s: Seccomp, _ version: String = "2.5.4", _ arch: UInt32 = 0xC000_003E) -> [UInt8] {
            Privileges.seccompCacheKey(s, libseccomp: version, nativeArch: arch)
        }
        let k = key(profile)
        XCTAssertEqual(k, key(profile))
        XCTAssertNotEqual(k, key(profile, "2.6.0"))
        XCTAssertNotEqual(k, key(profile, "2.5.4", 0x4000_0003))
        XCTAssertNotEqual(k, key(defaultSeccompProfile(capabilities: sysAdmin)))
        // Each field of Seccomp, Syscall and SyscallArg changes the key,
        // also from absent to empty.
        var variants: [Seccomp] = []
        func with(_ change: (inout Seccomp) -> Void) { var s = profile; change(&s); variants.append(s) }
        with { $0.defaultAction = "SCMP_ACT_KILL" }
        with { $0.defaultErrnoRet = nil }
        with { $0.defaultErrnoRet = 1 }
        with { $0.architectures = nil }
        with { $0.architectures = [] }
        with { $0.architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] }
        with { $0.flags = ["SECCOMP_FILTER_FLAG_LOG"] }
        with { $0.flags = [] }
        with { $0.listenerPath = "/x" }
        with { $0.listenerMetadata = "m" }
        with { $0.syscalls = nil }
        with { $0.syscalls = [] }
        with { $0.syscalls![0].names.append("read") }
        with { $0.syscalls![0].names[0] += "x" }
        with { $0.syscalls![0].action = "SCMP_ACT_LOG" }
        with { $0.syscalls![0].errnoRet = 7 }
        with { $0.syscalls![0].args = [] }
        with { $0.syscalls![0].args = [SyscallArg(index: 0, value: 1, op: "SCMP_CMP_EQ")] }
        let withArgs = profile.syscalls!.firstIndex { !($0.args ?? []).isEmpty }!
        with { $0.syscalls![withArgs].args![0].index += 1 }
        with { $0.syscalls![withArgs].args![0].value += 1 }
        with { $0.syscalls![withArgs].args![0].valueTwo = ($0.syscalls![withArgs].args![0].valueTwo ?? 0) + 1 }
        with { $0.syscalls![withArgs].args![0].op = "SCMP_CMP_NE" }
        with { $0.syscalls!.swapAt(0, 1) }
        // Two names that would run together without the length prefix.
        with { $0.syscalls![0].names = ["ab", "c"] }
        with { $0.syscalls![0].names = ["a", "bc"] }
        let keys = variants.map { key($0) }
        for (i, v) in keys.enumerated() { XCTAssertNotEqual(v, k, "variant \(i)") }
        XCTAssertEqual(Set(keys).count, keys.count, "two variants share a key")
        // The key covers every stored property: a new one must be added to
        // seccompCacheKey, and then here.
        XCTAssertEqual(Mirror(reflecting: profile).children.map { $0.label ?? "" },
                       ["defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath", "listenerMetadata", "syscalls"])
        XCTAssertEqual(Mirror(reflecting: profile.syscalls![0]).children.map { $0.label ?? "" }, ["names", "action", "errnoRet", "args"])
        XCTAssertEqual(Mirror(reflecting: SyscallArg(index: 0, value: 0, op: "")).children.map { $0.label ?? "" },
                       ["index", "value", "valueTwo", "op"])
    }

    func testCacheFileRoundTripAndRejects() {
        let program = [UInt8](repeating: 7, count: 64)
        let one = Array("key one\n".utf8)
        let file = Privileges.encodeCacheFile(key: one, program: program)
        XCTAssertEqual(Privileges.decodeCacheFile(file, key: one), program)
        XCTAssertNil(Privileges.decodeCacheFile(file, key: Array("key two\n".utf8)), "another key")
        XCTAssertNil(Privileges.decodeCacheFile(file, key: Array("key one".utf8)), "a prefix of the key")
        XCTAssertNil(Privileges.decodeCacheFile(Array(file.dropLast(3)), key: one), "not whole instructions")
        XCTAssertNil(Privileges.decodeCacheFile(Array(file.dropLast(64)), key: one), "no program")
        XCTAssertNil(Privileges.decodeCacheFile(Array("garbage".utf8), key: one))
        XCTAssertNil(Privileges.decodeCacheFile([], key: []))
        let huge = Privileges.encodeCacheFile(key: [107], program: [UInt8](repeating: 0, count: 8 * 4097))
        XCTAssertNil(Privileges.decodeCacheFile(huge, key: [107]), "longer than the kernel takes")
        XCTAssertEqual(hex16(fnv1a64([])), "cbf29ce484222325")
        XCTAssertEqual(hex16(fnv1a64(Array("a".utf8))), "af63dc4c8601ec8c")
    }

    func testCompileWritesReadsAndReplacesTheCache() throws {
        let root = makeTemp()
        defer { removeFlat(root + "/cache"); rmdir(root) }
        let dir = root + "/cache"
        let profile = defaultSeccompProfile(capabilities: runCapabilities)
        let built = try Privileges.compileSeccomp(profile, cacheDir: dir)
        XCTAssertEqual(built.flags, 0)
        XCTAssertGreaterThan(built.count, 100)
        XCTAssertEqual(built.instructions, try Privileges.exportSeccomp(Privileges.SeccompPlan(profile), profile))
        var st = stat()
        XCTAssertEqual(lstat(dir, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o700)
        let files = FS.listDirectory(dir)
        XCTAssertEqual(files.count, 1)
        let path = dir + "/" + files[0]
        XCTAssertTrue(files[0].hasSuffix(".bpf") && files[0].count == 16 + 4, files[0])
        XCTAssertEqual(lstat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o600)

        // A second compile reads it: make its program recognisably different.
        var cached = try FS.readBytes(path)
        let programStart = cached.count - built.instructions.count
        cached[programStart] ^= 0xFF
        try FS.writeAtomically(path, cached, mode: 0o600)
        XCTAssertEqual(try Privileges.compileSeccomp(profile, cacheDir: dir).instructions[0], built.instructions[0] ^ 0xFF)

        // A damaged file is ignored and rewritten.
        try FS.writeAtomically(path, Array("not a cache file".utf8), mode: 0o600)
        XCTAssertEqual(try Privileges.compileSeccomp(profile, cacheDir: dir), built)
        XCTAssertEqual(try FS.readBytes(path).suffix(built.instructions.count), built.instructions[...])

        // Another profile, another file; a file others may write is not read.
        let other = try Privileges.compileSeccomp(defaultSeccompProfile(capabilities: sysAdmin), cacheDir: dir)
        XCTAssertNotEqual(other.instructions, built.instructions)
        XCTAssertEqual(FS.listDirectory(dir).count, 2)
        chmod(path, 0o666)
        try FS.writeAtomically(path + ".x", [], mode: 0o600)
        unlink(path + ".x")
        var tampered = try FS.readBytes(path)
        tampered[tampered.count - 1] ^= 0xFF
        let fd = open(path, O_WRONLY | O_TRUNC)
        _ = tampered.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        chmod(path, 0o666)
        XCTAssertEqual(try Privileges.compileSeccomp(profile, cacheDir: dir), built, "a world-writable file is not trusted")

        // A directory others may write is not used at all.
        chmod(dir, 0o777)
        XCTAssertFalse(Privileges.usableCacheDirectory(dir))
        chmod(dir, 0o700)
    }

    func testFlagsMapToSeccompSyscallFlags() throws {
        XCTAssertEqual(try Privileges.seccompSyscallFlags([.tsync, .log, .specAllow]), 7)
        XCTAssertThrowsError(try Privileges.seccompSyscallFlags([.waitKillableRecv]))
    }
}

private func mc_test_errno(_ e: UInt16) -> UInt32 { 0x0005_0000 | UInt32(e) }
