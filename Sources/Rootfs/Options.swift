// Mount flags and the parser from an OCI mount's `options` list to them.
// Everything in this file is pure (no system calls), so it is unit tested.
// The MOUNT_ATTR_* and ST_* values are Sys's Kernel constants.

import Sys

/// mount(2) flags, as in <sys/mount.h> (kernel ABI, so stable). Defined here
/// rather than taken from Glibc, whose import types vary between Int and UInt.
public enum MS {
    public static let rdonly: UInt = 0x1
    public static let nosuid: UInt = 0x2
    public static let nodev: UInt = 0x4
    public static let noexec: UInt = 0x8
    public static let synchronous: UInt = 0x10
    public static let remount: UInt = 0x20
    public static let mandlock: UInt = 0x40
    public static let dirsync: UInt = 0x80
    public static let nosymfollow: UInt = 0x100
    public static let noatime: UInt = 0x400
    public static let nodiratime: UInt = 0x800
    public static let bind: UInt = 0x1000
    public static let move: UInt = 0x2000
    public static let rec: UInt = 0x4000
    public static let silent: UInt = 0x8000
    public static let posixacl: UInt = 0x1_0000
    public static let unbindable: UInt = 0x2_0000
    public static let `private`: UInt = 0x4_0000
    public static let slave: UInt = 0x8_0000
    public static let shared: UInt = 0x10_0000
    public static let relatime: UInt = 0x20_0000
    public static let iversion: UInt = 0x80_0000
    public static let strictatime: UInt = 0x100_0000
    public static let lazytime: UInt = 0x200_0000

    /// The propagation types; a mount(2) call may change only one of these at a time.
    public static let propagationMask: UInt = unbindable | `private` | slave | shared
    /// The per-mount flags a bind remount (MS_BIND|MS_REMOUNT) can change.
    public static let perMountMask: UInt = rdonly | nosuid | nodev | noexec | noatime | nodiratime | relatime
        | strictatime | nosymfollow
}

/// An OCI mount's options, parsed.
public struct MountOptions: Equatable, CustomStringConvertible {
    /// Every option the parser knows and the runtime carries out (flags,
    /// propagation, recursive attributes, tmpcopyup, idmap, ridmap), sorted: the
    /// `mountOptions` that `features` prints. Anything else is passed to the
    /// filesystem as data.
    public static let known: [String] = (Array(Rootfs.flagOptions.keys) + Array(Rootfs.propagationOptions.keys)
        + Array(Rootfs.recursiveOptions.keys) + Rootfs.extensionOptions.subtracting(Rootfs.unsupportedExtensions)).sorted()

    /// MS_* flags to pass to mount(2), MS_BIND and MS_REC included.
    public var flags: UInt = 0
    /// Flags an option explicitly turned off ("rw", "suid", "dev", "exec", "atime", ...):
    /// a bind remount must not carry these over from the source mount.
    public var clearedFlags: UInt = 0
    /// Propagation changes (MS_PRIVATE, MS_SLAVE|MS_REC, ...), in the order given;
    /// each needs its own mount(2) call after the mount itself.
    public var propagation: [UInt] = []
    /// Recursive attributes ("rro", "rnosuid", ...) for mount_setattr(AT_RECURSIVE).
    public var recursiveSet: UInt64 = 0
    public var recursiveClear: UInt64 = 0
    /// Options the runtime acts on itself rather than the kernel (tmpcopyup, idmap, ...).
    public var extensions: [String] = []
    /// Everything else, comma-joined, for mount(2)'s data argument ("mode=755,size=65536k").
    public var data: String = ""

    public init(flags: UInt = 0, clearedFlags: UInt = 0, propagation: [UInt] = [], recursiveSet: UInt64 = 0,
                recursiveClear: UInt64 = 0, extensions: [String] = [], data: String = "") {
        self.flags = flags
        self.clearedFlags = clearedFlags
        self.propagation = propagation
        self.recursiveSet = recursiveSet
        self.recursiveClear = recursiveClear
        self.extensions = extensions
        self.data = data
    }

    public var isBind: Bool { flags & MS.bind != 0 }
    public var isRecursiveBind: Bool { isBind && flags & MS.rec != 0 }
    public var hasRecursiveAttributes: Bool { recursiveSet != 0 || recursiveClear != 0 }
    /// Whether a bind mount needs the second, MS_REMOUNT call to apply per-mount flags.
    public var needsBindRemount: Bool { flags & ~(MS.bind | MS.rec | MS.remount) & ~MS.propagationMask != 0 }

    public var description: String {
        "flags=0x\(String(flags, radix: 16)) cleared=0x\(String(clearedFlags, radix: 16)) "
            + "propagation=\(propagation.map { "0x" + String($0, radix: 16) }) "
            + "rset=0x\(String(recursiveSet, radix: 16)) rclr=0x\(String(recursiveClear, radix: 16)) "
            + "ext=\(extensions) data=\"\(data)\""
    }
}

extension Rootfs {
    /// Option -> (clear?, MS flag), as runc's parseMountOptions.
    static let flagOptions: [String: (clear: Bool, flag: UInt)] = [
        "acl": (false, MS.posixacl), "noacl": (true, MS.posixacl),
        "async": (true, MS.synchronous), "sync": (false, MS.synchronous),
        "atime": (true, MS.noatime), "noatime": (false, MS.noatime),
        "bind": (false, MS.bind), "rbind": (false, MS.bind | MS.rec),
        "defaults": (false, 0),
        "dev": (true, MS.nodev), "nodev": (false, MS.nodev),
        "diratime": (true, MS.nodiratime), "nodiratime": (false, MS.nodiratime),
        "dirsync": (false, MS.dirsync),
        "exec": (true, MS.noexec), "noexec": (false, MS.noexec),
        "iversion": (false, MS.iversion), "noiversion": (true, MS.iversion),
        "lazytime": (false, MS.lazytime), "nolazytime": (true, MS.lazytime),
        "loud": (true, MS.silent), "silent": (false, MS.silent),
        "mand": (false, MS.mandlock), "nomand": (true, MS.mandlock),
        "relatime": (false, MS.relatime), "norelatime": (true, MS.relatime),
        "strictatime": (false, MS.strictatime), "nostrictatime": (true, MS.strictatime),
        "remount": (false, MS.remount),
        "ro": (false, MS.rdonly), "rw": (true, MS.rdonly),
        "suid": (true, MS.nosuid), "nosuid": (false, MS.nosuid),
        "symfollow": (true, MS.nosymfollow), "nosymfollow": (false, MS.nosymfollow),
    ]

    static let propagationOptions: [String: UInt] = [
        "private": MS.private, "rprivate": MS.private | MS.rec,
        "shared": MS.shared, "rshared": MS.shared | MS.rec,
        "slave": MS.slave, "rslave": MS.slave | MS.rec,
        "unbindable": MS.unbindable, "runbindable": MS.unbindable | MS.rec,
    ]

    static let recursiveOptions: [String: (clear: Bool, attr: UInt64)] = [
        "rro": (false, Kernel.MOUNT_ATTR_RDONLY), "rrw": (true, Kernel.MOUNT_ATTR_RDONLY),
        "rnosuid": (false, Kernel.MOUNT_ATTR_NOSUID), "rsuid": (true, Kernel.MOUNT_ATTR_NOSUID),
        "rnodev": (false, Kernel.MOUNT_ATTR_NODEV), "rdev": (true, Kernel.MOUNT_ATTR_NODEV),
        "rnoexec": (false, Kernel.MOUNT_ATTR_NOEXEC), "rexec": (true, Kernel.MOUNT_ATTR_NOEXEC),
        "rnodiratime": (false, Kernel.MOUNT_ATTR_NODIRATIME), "rdiratime": (true, Kernel.MOUNT_ATTR_NODIRATIME),
        "rrelatime": (false, Kernel.MOUNT_ATTR_RELATIME), "rnorelatime": (true, Kernel.MOUNT_ATTR_RELATIME),
        "rnoatime": (false, Kernel.MOUNT_ATTR_NOATIME), "ratime": (true, Kernel.MOUNT_ATTR_NOATIME),
        "rstrictatime": (false, Kernel.MOUNT_ATTR_STRICTATIME), "rnostrictatime": (true, Kernel.MOUNT_ATTR_STRICTATIME),
        "rnosymfollow": (false, Kernel.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (true, Kernel.MOUNT_ATTR_NOSYMFOLLOW),
    ]

    /// Options that are runtime extensions, never passed to the kernel.
    static let extensionOptions: Set<String> = ["tmpcopyup", "notmpcopyup", "idmap", "ridmap"]

    /// The extensions parseOptions knows but the runtime does not carry out:
    /// "notmpcopyup" does not undo an earlier "tmpcopyup" (either one
    /// present, the copy is made). "idmap" and "ridmap" are carried out on
    /// bind mounts (IDMap.swift); Spec.mountIDMapProblems refuses the rest.
    static let unsupportedExtensions: Set<String> = ["notmpcopyup"]

    /// Parses an OCI mount's options: flags (a later option wins over an
    /// earlier one: "ro,rw" is rw), propagation, recursive attributes,
    /// runtime extensions, and the rest as comma-joined data. Pure.
    public static func parseOptions(_ options: [String]) -> MountOptions {
        var o = MountOptions()
        var data: [String] = []
        for opt in options {
            if let f = flagOptions[opt] {
                if f.clear {
                    o.flags &= ~f.flag
                    o.clearedFlags |= f.flag
                } else {
                    o.flags |= f.flag
                    o.clearedFlags &= ~f.flag
                }
            } else if let p = propagationOptions[opt] {
                o.propagation.append(p)
            } else if let r = recursiveOptions[opt] {
                if r.attr & Kernel.MOUNT_ATTR__ATIME == r.attr {
                    // The access time is one value: setting it (or going back to
                    // the default, relatime) needs the whole mask cleared first.
                    o.recursiveClear |= Kernel.MOUNT_ATTR__ATIME
                    if r.clear {
                        o.recursiveSet &= ~Kernel.MOUNT_ATTR__ATIME
                    } else {
                        o.recursiveSet = (o.recursiveSet & ~Kernel.MOUNT_ATTR__ATIME) | r.attr
                    }
                } else if r.clear {
                    o.recursiveSet &= ~r.attr
                    o.recursiveClear |= r.attr
                } else {
                    o.recursiveSet |= r.attr
                    o.recursiveClear &= ~r.attr
                }
            } else if extensionOptions.contains(opt) {
                if !o.extensions.contains(opt) { o.extensions.append(opt) }
            } else if !opt.isEmpty {
                data.append(opt)
            }
        }
        o.data = String.plainJoin(data, separator: ",")
        return o
    }

    /// The propagation for `linux.rootfsPropagation`, nil for an unknown name.
    public static func propagationFlag(_ name: String) -> UInt? { propagationOptions[name] }

    /// MS_* flags of a mount from statfs(2)'s f_flags (ST_* values). ST_NOSYMFOLLOW
    /// differs from MS_NOSYMFOLLOW; a mount with neither noatime nor relatime is strictatime.
    public static func msFlags(statfsFlags st: UInt64) -> UInt {
        var f: UInt = 0
        let map: [(UInt64, UInt)] = [
            (Kernel.ST_RDONLY, MS.rdonly), (Kernel.ST_NOSUID, MS.nosuid), (Kernel.ST_NODEV, MS.nodev),
            (Kernel.ST_NOEXEC, MS.noexec), (Kernel.ST_SYNCHRONOUS, MS.synchronous), (Kernel.ST_MANDLOCK, MS.mandlock),
            (Kernel.ST_NOATIME, MS.noatime), (Kernel.ST_NODIRATIME, MS.nodiratime), (Kernel.ST_RELATIME, MS.relatime),
            (Kernel.ST_NOSYMFOLLOW, MS.nosymfollow),
        ]
        for (s, m) in map where st & s != 0 { f |= m }
        if f & (MS.noatime | MS.relatime) == 0 { f |= MS.strictatime }
        return f
    }

    /// The flags for a bind remount: what was asked, plus, when the kernel
    /// refused that (EPERM: flags locked in a user namespace), the source
    /// mount's current per-mount flags that were not explicitly cleared.
    public static func bindRemountFlags(requested: UInt, cleared: UInt, current: UInt?) -> UInt {
        var f = (requested & ~MS.propagationMask & ~MS.rec) | MS.bind | MS.remount
        if let cur = current {
            let atime = MS.noatime | MS.relatime | MS.strictatime
            // An atime setting is one value: inherit it only if none was asked for.
            let inherit = f & atime != 0 ? MS.perMountMask & ~atime : MS.perMountMask
            f |= cur & inherit & ~cleared
        }
        return f
    }
}

// MARK: the new mount API (fsconfig, fsmount)

extension Rootfs {
    /// The fsconfig flag keys for the superblock flags among mount(2)
    /// `flags` ("ro", "sync", "dirsync", "lazytime"); nil when a flag has no
    /// such key (remount, move, mand, acl, iversion): mount(2) must do that
    /// mount. Per-mount flags go to fsmount instead (mountAttributes);
    /// MS_SILENT only quiets the kernel log and is dropped.
    public static func superblockKeys(_ flags: UInt) -> [String]? {
        if flags & (MS.remount | MS.move | MS.bind | MS.mandlock | MS.posixacl | MS.iversion) != 0 { return nil }
        var keys: [String] = []
        if flags & MS.rdonly != 0 { keys.append("ro") }
        if flags & MS.synchronous != 0 { keys.append("sync") }
        if flags & MS.dirsync != 0 { keys.append("dirsync") }
        if flags & MS.lazytime != 0 { keys.append("lazytime") }
        return keys
    }

    /// fsmount's MOUNT_ATTR_* for mount(2) `flags`, with mount(2)'s access
    /// time rule: strictatime wins, else noatime, else relatime.
    public static func mountAttributes(_ flags: UInt) -> UInt64 {
        var a: UInt64 = 0
        if flags & MS.rdonly != 0 { a |= Kernel.MOUNT_ATTR_RDONLY }
        if flags & MS.nosuid != 0 { a |= Kernel.MOUNT_ATTR_NOSUID }
        if flags & MS.nodev != 0 { a |= Kernel.MOUNT_ATTR_NODEV }
        if flags & MS.noexec != 0 { a |= Kernel.MOUNT_ATTR_NOEXEC }
        if flags & MS.nodiratime != 0 { a |= Kernel.MOUNT_ATTR_NODIRATIME }
        if flags & MS.nosymfollow != 0 { a |= Kernel.MOUNT_ATTR_NOSYMFOLLOW }
        if flags & MS.strictatime != 0 {
            a |= Kernel.MOUNT_ATTR_STRICTATIME
        } else if flags & MS.noatime != 0 {
            a |= Kernel.MOUNT_ATTR_NOATIME
        }
        return a
    }

    /// mount(2) data as fsconfig parameters: "mode=755,size=65536k,newinstance"
    /// is (mode, 755), (size, 65536k), (newinstance, nil), the way the
    /// kernel itself splits a data string for a filesystem (at the bytes: a
    /// "," before a combining mark splits too); empty items are skipped.
    public static func fsParameters(_ data: String) -> [(key: String, value: String?)] {
        data.utf8.split(separator: UInt8(ascii: ",")).map { item in
            guard let eq = item.firstIndex(of: UInt8(ascii: "=")) else { return (key: String(decoding: item, as: UTF8.self), value: nil) }
            return (key: String(decoding: item[..<eq], as: UTF8.self),
                    value: String(decoding: item[item.index(after: eq)...], as: UTF8.self))
        }
    }
}
