import CShim
import Glibc
import Spec
import Sys

// linux.resources.devices as a cgroup v2 device program: the eBPF program
// (BPF_PROG_TYPE_CGROUP_DEVICE) the kernel runs on every open and mknod of a
// device node by a process of the cgroup. This is the pure half: the rules
// become instructions here, unit-tested one by one; loading and attaching
// them (bpf(2) through the shim) is issue 13's next step.
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
    /// Loads `program` and attaches it to the cgroup2 directory `cgroup` as
    /// its device program; it stays attached until the cgroup is removed.
    /// A failure names the verifier's last word.
    public static func attach(_ program: [BPFInstruction], toCgroup cgroup: String) throws {
        let code = program.flatMap { $0.bytes }
        var log = [CChar](repeating: 0, count: 4096)
        let prog = code.withUnsafeBytes { mc_bpf_load_device_program($0.baseAddress, UInt32(program.count), &log, UInt32(log.count)) }
        guard prog >= 0 else {
            let e = errno
            // The verifier's complaint is the line before its statistics.
            let lines = String(cString: log).split(separator: "\n").map(String.init)
            let words = lines.last(where: { !$0.hasPrefix("processed ") && !$0.hasPrefix("verification time") }) ?? ""
            throw SysError("load the device program" + (words.isEmpty ? "" : " (\(words))"), errno: e)
        }
        defer { close(prog) }
        let dir = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw SysError("open \(cgroup)") }
        defer { close(dir) }
        guard mc_bpf_attach_device_program(dir, prog, -1) == 0 else { throw SysError("attach the device program to \(cgroup)") }
    }
}
