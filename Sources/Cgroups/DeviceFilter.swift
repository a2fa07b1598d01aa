import CShim
import Glibc
import Spec
import Sys

// linux.resources.devices as a cgroup v2 device program: the eBPF program
// (BPF_PROG_TYPE_CGROUP_DEVICE) the kernel runs on every open and mknod of a
// device node by a process of the cgroup. The rules become instructions here
// (pure, unit-tested one by one); DevicePrograms below loads, attaches,
// replaces and detaches them through bpf(2) (the shim's cshim_bpf.c).
//
// The program's context (struct bpf_cgroup_dev_ctx) is three u32s:
// access_type = access << 16 | type, major, minor. type: 1 block, 2 char;
// access: 1 mknod, 2 read, 4 write. It returns 1 to allow, 0 to deny.
//
// runtime-spec: the rules apply in order, a later one overriding an earlier
// one. The program tests them from the last to the first and returns at the
// first that matches; none matching denies. A rule matching everything
// (type a, all access, any major and minor) is the last one tested.

/// One eBPF instruction (struct bpf_insn).
public struct BPFInstruction: Equatable, CustomStringConvertible {
    public var code: UInt8
    public var dst: UInt8
    public var src: UInt8
    public var off: Int16
    public var imm: Int32

    public init(_ code: UInt8, dst: UInt8 = 0, src: UInt8 = 0, off: Int16 = 0, imm: Int32 = 0) {
        self.code = code; self.dst = dst; self.src = src; self.off = off; self.imm = imm
    }

    // The opcodes the device program uses (<linux/bpf.h>, <linux/bpf_common.h>).
    static let loadWord: UInt8 = 0x61      // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
    static let moveReg: UInt8 = 0xbf       // BPF_ALU64 | BPF_MOV | BPF_X: dst = src
    static let moveImm: UInt8 = 0xb7       // BPF_ALU64 | BPF_MOV | BPF_K: dst = imm
    static let andImm: UInt8 = 0x57        // BPF_ALU64 | BPF_AND | BPF_K: dst &= imm
    static let shiftRightImm: UInt8 = 0x77 // BPF_ALU64 | BPF_RSH | BPF_K: dst >>= imm
    static let jumpNotEqualImm: UInt8 = 0x55 // BPF_JMP | BPF_JNE | BPF_K: if dst != imm, skip off
    static let exit: UInt8 = 0x95          // BPF_JMP | BPF_EXIT: return r0

    /// The 8 bytes the kernel takes (little-endian, as x86_64).
    public var bytes: [UInt8] {
        let o = UInt16(bitPattern: off), i = UInt32(bitPattern: imm)
        return [code, (src << 4) | (dst & 0x0f), UInt8(o & 0xff), UInt8(o >> 8),
                UInt8(i & 0xff), UInt8(i >> 8 & 0xff), UInt8(i >> 16 & 0xff), UInt8(i >> 24)]
    }

    public var description: String { "code=\(code) dst=r\(dst) src=r\(src) off=\(off) imm=\(imm)" }
}

public enum DeviceFilter {
    // Registers: r1 the context; r2 type, r3 access, r4 major, r5 minor; r6 scratch; r0 the verdict.
    static let ctx: UInt8 = 1, type: UInt8 = 2, access: UInt8 = 3, major: UInt8 = 4, minor: UInt8 = 5, scratch: UInt8 = 6

    /// The program for `rules` (linux.resources.devices), or an error
    /// naming the first rule the kernel could not be given.
    public static func program(_ rules: [DeviceCgroup]) throws -> [BPFInstruction] {
        typealias I = BPFInstruction
        var p: [I] = [
            I(I.loadWord, dst: type, src: ctx, off: 0),
            I(I.moveReg, dst: access, src: type),
            I(I.andImm, dst: type, imm: 0xffff),
            I(I.shiftRightImm, dst: access, imm: 16),
            I(I.loadWord, dst: major, src: ctx, off: 4),
            I(I.loadWord, dst: minor, src: ctx, off: 8),
        ]
        for (index, rule) in rules.enumerated().reversed() {
            let what = "linux.resources.devices[\(index)]"
            // The tests of one rule; each jumps past the rest of it on a mismatch.
            var tests: [(UInt8, Int32, mask: Int32?)] = []
            switch rule.type ?? "a" {
            case "a": break
            case "b": tests.append((type, 1, nil))
            case "c": tests.append((type, 2, nil))
            case let t: throw Failure(.invalid, "\(what).type: \(quoted(t, max: 16)) is not a, b or c")
            }
            let granted = try accessBits(rule.access, what: what)
            // The access asked for must lie within the rule's: none outside it.
            if granted != 7 { tests.append((scratch, 0, mask: ~granted & 7)) }
            if let m = rule.major, m != -1 {
                guard let v = Int32(exactly: m), v >= 0 else { throw Failure(.invalid, "\(what).major: \(m) is out of range") }
                tests.append((major, v, nil))
            }
            if let m = rule.minor, m != -1 {
                guard let v = Int32(exactly: m), v >= 0 else { throw Failure(.invalid, "\(what).minor: \(m) is out of range") }
                tests.append((minor, v, nil))
            }
            // Instructions each test takes: a masked one copies and masks first.
            var remaining = tests.reduce(0) { $0 + ($1.mask == nil ? 1 : 3) } + 2
            for t in tests {
                if let mask = t.mask {
                    p.append(I(I.moveReg, dst: scratch, src: access))
                    p.append(I(I.andImm, dst: scratch, imm: mask))
                    remaining -= 2
                }
                remaining -= 1
                p.append(I(I.jumpNotEqualImm, dst: t.0, off: Int16(remaining), imm: t.1))
            }
            p.append(I(I.moveImm, dst: 0, imm: rule.allow ? 1 : 0))
            p.append(I(I.exit))
            // A rule that matches everything ends the program: the verifier
            // refuses instructions nothing can reach (the earlier rules it
            // overrides, and the default).
            if tests.isEmpty { return p }
        }
        p.append(I(I.moveImm, dst: 0, imm: 0))
        p.append(I(I.exit))
        return p
    }

    /// "rwm" letters -> the kernel's access bits (m 1, r 2, w 4); none or
    /// empty is all three.
    static func accessBits(_ access: String?, what: String) throws -> Int32 {
        guard let a = access, !a.isEmpty else { return 7 }
        var bits: Int32 = 0
        for c in a {
            switch c {
            case "m": bits |= 1
            case "r": bits |= 2
            case "w": bits |= 4
            default: throw Failure(.invalid, "\(what).access: \(quoted(a, max: 16)) is not made of r, w and m")
            }
        }
        return bits
    }

    /// What the program decides for one request, run here the way the
    /// kernel would (for tests): `type` 1 block or 2 char, `access` bits.
    public static func evaluate(_ program: [BPFInstruction], type t: UInt32, access a: UInt32, major: UInt32, minor: UInt32) -> Int64? {
        var r = [Int64](repeating: 0, count: 11)
        let ctx = [Int64(a << 16 | t), Int64(major), Int64(minor)]
        var pc = 0
        while pc < program.count {
            let i = program[pc]
            pc += 1
            switch i.code {
            case BPFInstruction.loadWord:
                guard i.src == DeviceFilter.ctx, i.off % 4 == 0, Int(i.off) / 4 < ctx.count else { return nil }
                r[Int(i.dst)] = ctx[Int(i.off) / 4]
            case BPFInstruction.moveReg: r[Int(i.dst)] = r[Int(i.src)]
            case BPFInstruction.moveImm: r[Int(i.dst)] = Int64(i.imm)
            case BPFInstruction.andImm: r[Int(i.dst)] &= Int64(i.imm)
            case BPFInstruction.shiftRightImm: r[Int(i.dst)] = Int64(bitPattern: UInt64(bitPattern: r[Int(i.dst)]) >> UInt64(i.imm))
            case BPFInstruction.jumpNotEqualImm: if r[Int(i.dst)] != Int64(i.imm) { pc += Int(i.off) }
            case BPFInstruction.exit: return r[0]
            default: return nil
            }
        }
        return nil  // fell off the end: the verifier refuses such a program
    }
}

extension DeviceFilter {
    /// The program a container gets for its linux.resources.devices: what
    /// the v1 path writes into devices.allow and devices.deny, in the same
    /// order and with v1's readings, so both allow the same. A new v1 cgroup
    /// starts as its parent, allowing everything: so does this list, with a
    /// rule allowing all first. A rule of type "a" is v1's reset to allow or
    /// deny all, whatever its access and numbers say. The runtime's default
    /// rules (defaultDeviceRules) come last.
    ///
    /// Where v1 differs: in v1 a rule only takes back an exception with the
    /// same type and numbers (a deny of "c 1:3 m" after an allow of
    /// "c *:* m" leaves 1:3 allowed there), the program lets the later rule
    /// win (runtime-spec's reading). The defaults are all allows after the
    /// spec's rules, so they agree for them.
    public static func containerProgram(_ rules: [DeviceCgroup]) throws -> [BPFInstruction] {
        _ = try program(rules)  // each rule checked, named by its own index
        let own = rules.map { r -> DeviceCgroup in (r.type ?? "a") == "a" ? DeviceCgroup(allow: r.allow) : r }
        return try program([DeviceCgroup(allow: true)] + own + defaultDeviceRules)
    }

    /// Whether `rule` is v1's reset to deny everything ("a *:* rwm" into devices.deny).
    static func deniesAll(_ rule: DeviceCgroup) -> Bool { !rule.allow && (rule.type ?? "a") == "a" }

    /// Loads `program` and makes it the device program of the cgroup2
    /// directory `cgroup` (KernelDevicePrograms.install).
    public static func attach(_ program: [BPFInstruction], toCgroup cgroup: String) throws {
        try KernelDevicePrograms().install(program, in: cgroup)
    }
}

/// The device programs of a cgroup2 directory: the kernel's
/// (KernelDevicePrograms), or a recording fake in unit tests.
public protocol DevicePrograms {
    /// Makes `program` the one device program attached to `cgroup`: in place
    /// of the one attached before (BPF_F_REPLACE), or attached first and the
    /// others detached after, so the cgroup is never without one.
    func install(_ program: [BPFInstruction], in cgroup: String) throws
    /// The ids of the device programs attached to `cgroup` itself.
    func attached(to cgroup: String) throws -> [UInt32]
    /// Detaches every device program from `cgroup`; none, or no such
    /// directory, is fine. How many it detached.
    @discardableResult func detachAll(from cgroup: String) throws -> Int
}

/// bpf(2): BPF_PROG_LOAD, BPF_PROG_ATTACH (ALLOW_MULTI, REPLACE),
/// BPF_PROG_QUERY and BPF_PROG_GET_FD_BY_ID to find what is attached (from
/// any process: nothing is pinned), BPF_PROG_DETACH.
public struct KernelDevicePrograms: DevicePrograms {
    public init() {}

    public func install(_ program: [BPFInstruction], in cgroup: String) throws {
        let prog = try load(program)
        defer { close(prog) }
        let dir = try openCgroup(cgroup)
        defer { close(dir) }
        let old = try attachedPrograms(dir, cgroup)
        defer { for o in old { close(o.fd) } }
        if old.count == 1 && mc_bpf_attach_device_program(dir, prog, old[0].fd) == 0 { return }
        // None before, several, or no BPF_F_REPLACE (before 5.6): attach, then detach the old.
        guard mc_bpf_attach_device_program(dir, prog, -1) == 0 else {
            throw SysError("attach the device program to \(cgroup)")
        }
        for o in old where mc_bpf_detach_device_program(dir, o.fd) != 0 && errno != ENOENT {
            throw SysError("detach the device program \(o.id) from \(cgroup)")
        }
    }

    public func attached(to cgroup: String) throws -> [UInt32] {
        let dir = try openCgroup(cgroup)
        defer { close(dir) }
        return try ids(dir, cgroup)
    }

    @discardableResult public func detachAll(from cgroup: String) throws -> Int {
        let dir = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir < 0 && errno == ENOENT { return 0 }
        guard dir >= 0 else { throw SysError("open \(cgroup)") }
        defer { close(dir) }
        let old = try attachedPrograms(dir, cgroup)
        defer { for o in old { close(o.fd) } }
        var n = 0
        for o in old {
            if mc_bpf_detach_device_program(dir, o.fd) == 0 { n += 1; continue }
            if errno != ENOENT { throw SysError("detach the device program \(o.id) from \(cgroup)") }
        }
        return n
    }

    /// A loaded program's fd; a failure names the verifier's last word.
    func load(_ program: [BPFInstruction]) throws -> Int32 {
        let code = program.flatMap { $0.bytes }
        // Without a log first: a log too short for the verifier's words
        // (every instruction of every path, at level 1) fails the load with ENOSPC.
        let first = code.withUnsafeBytes { mc_bpf_load_device_program($0.baseAddress, UInt32(program.count), nil, 0) }
        if first >= 0 { return first }
        var log = [CChar](repeating: 0, count: 1 << 16)
        let prog = code.withUnsafeBytes { mc_bpf_load_device_program($0.baseAddress, UInt32(program.count), &log, UInt32(log.count)) }
        guard prog >= 0 else {
            let e = errno
            // The verifier's complaint is the line before its statistics.
            let lines = String(cString: log).split(separator: "\n").map(String.init)
            let words = lines.last(where: { !$0.hasPrefix("processed ") && !$0.hasPrefix("verification time") }) ?? ""
            throw SysError("load the device program" + (words.isEmpty ? "" : " (\(words))"), errno: e)
        }
        return prog
    }

    func openCgroup(_ cgroup: String) throws -> Int32 {
        let dir = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw SysError("open \(cgroup)") }
        return dir
    }

    func ids(_ dir: Int32, _ cgroup: String) throws -> [UInt32] {
        var room: UInt32 = 64  // the kernel's limit per cgroup and attach type
        for _ in 0..<8 {
            var ids = [UInt32](repeating: 0, count: Int(room))
            var count = room
            if mc_bpf_query_device_programs(dir, &ids, &count) == 0 { return Array(ids.prefix(Int(min(count, room)))) }
            guard errno == ENOSPC, count > room else { throw SysError("query the device programs of \(cgroup)") }
            room = count
        }
        throw SysError("query the device programs of \(cgroup): their number keeps growing", errno: ENOSPC)
    }

    /// The attached programs, each with an fd of it (close them). One freed
    /// meanwhile, or one an LSM keeps from us, is left out: another device
    /// program can only deny more.
    func attachedPrograms(_ dir: Int32, _ cgroup: String) throws -> [(id: UInt32, fd: Int32)] {
        var out: [(id: UInt32, fd: Int32)] = []
        do {
            for id in try ids(dir, cgroup) {
                let fd = mc_bpf_prog_fd_by_id(id)
                if fd >= 0 { out.append((id, fd)); continue }
                guard [ENOENT, EPERM, EACCES].contains(errno) else { throw SysError("open the device program \(id) of \(cgroup)") }
            }
        } catch {
            for o in out { close(o.fd) }
            throw error
        }
        return out
    }
}

/// Device programs held back for create: `install` records what to attach
/// and `flush` attaches it through `kernel`. create writes the limits before
/// the init exists and attaches the program (its BPF_PROG_LOAD, the
/// verifier's pass, costs 0.3-0.5 ms here) while the init copies its pages;
/// the init runs nothing of the container's before `go`, which comes after.
public final class DeferredDevicePrograms: DevicePrograms {
    let kernel: DevicePrograms
    var pending: [(program: [BPFInstruction], cgroup: String)] = []

    public init(_ kernel: DevicePrograms = KernelDevicePrograms()) { self.kernel = kernel }

    public func install(_ program: [BPFInstruction], in cgroup: String) throws {
        pending.removeAll { $0.cgroup == cgroup }
        pending.append((program, cgroup))
    }

    public func attached(to cgroup: String) throws -> [UInt32] { try kernel.attached(to: cgroup) }

    @discardableResult public func detachAll(from cgroup: String) throws -> Int {
        pending.removeAll { $0.cgroup == cgroup }
        return try kernel.detachAll(from: cgroup)
    }

    /// Attaches what was installed, in order; what fails stays pending.
    public func flush() throws {
        while let next = pending.first {
            try kernel.install(next.program, in: next.cgroup)
            pending.removeFirst()
        }
    }
}
