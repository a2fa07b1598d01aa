import Glibc
import Spec
import Sys

// Names of run-mode containers, one small file each: DATA/names/NAME holds
// the id of the container that has NAME. A `run` takes a name, and a lookup
// finds it, by one file, whatever the number of containers (issue 19; the
// metadata of every container was read before).
//
// A claim is a link(2) of a file already holding the id, so an entry is
// never seen half written and two claims of one free name cannot both
// succeed. An entry whose container no longer has the name (it is gone, or
// died before its metadata was written, or a rename died half way) is
// stale: the next claim replaces it, under a lock on the directory (so only
// one claim replaces it), and lookups ignore it. Entries go with their
// container (`release`, under the same lock, so a release never removes a
// newer claim of the name).

public struct NameIndex {
    public let dir: String

    public init(dir: String) { self.dir = dir }

    /// The name as a file name here: an ASCII letter or digit first, then
    /// letters, digits, `_` `.` `-` (the --name rule); at most 255 bytes. No
    /// `/`, no newline, no `..` on its own, nothing starting with a dot (the
    /// index's own files do).
    public static func storable(_ name: String) -> Bool {
        func alnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        let u = Array(name.utf8)
        guard let first = u.first, alnum(first), u.count <= 255 else { return false }
        return u.allSatisfy { alnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    func path(_ name: String) -> String { dir + "/" + name }

    /// The id NAME's entry holds (nil: no entry, an unreadable one, or a name
    /// that cannot be one). Says nothing about whether the entry is stale.
    public func entry(_ name: String) -> String? {
        guard NameIndex.storable(name), let text = try? FS.readString(path(name)) else { return nil }
        let id = text.trimmingNewlines()
        return id.isEmpty ? nil : id
    }

    /// Takes `name` for `id`. An entry `isLive` says is held (its container
    /// still has the name) refuses it: `NameIndex.Taken` with that id; a
    /// stale one is replaced.
    public func claim(_ name: String, id: String, isLive: (String) -> Bool) throws {
        guard NameIndex.storable(name) else {
            throw Failure(.invalid, "invalid name \(quoted(name)): use letters, digits, _ . - and start with a letter or digit")
        }
        try FS.makeDirectories(dir, mode: 0o700)
        // Written whole before it is linked in: no reader sees it empty. A
        // crash leaves only this dot file, which `claim` ignores.
        let tmp = dir + "/.claim-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SysError("create \(tmp)") }
        defer { unlink(tmp) }
        do {
            try FS.writeAll(fd: fd, Array((id + "\n").utf8), what: "write \(tmp)")
            close(fd)
        } catch {
            close(fd)
            throw error
        }
        let target = path(name)
        // A stale entry replaced costs a round; more than a few means one
        // that cannot be removed (not a file).
        for _ in 0..<8 {
            if link(tmp, target) == 0 { return }
            guard errno == EEXIST else { throw SysError("link \(target)") }
            let owner = entry(name)
            if let o = owner, isLive(o) { throw Taken(name: name, id: o) }
            // Stale (or unreadable): removed only if it is still the entry
            // we judged, so a claim that replaced it meanwhile stays.
            let lock = try FileLock.acquire(dir)
            if entry(name) == owner { unlink(target) }
            lock.unlock()
        }
        throw Failure(.failed, "the name \(quoted(name)) has an entry in \(dir) that cannot be replaced")
    }

    /// Removes NAME's entry if it holds `id` (a newer claim of the name by
    /// another container stays).
    public func release(_ name: String, id: String) {
        guard NameIndex.storable(name), FS.isDirectory(dir), let lock = try? FileLock.acquire(dir) else { return }
        defer { lock.unlock() }
        if entry(name) == id { unlink(path(name)) }
    }

    /// Removes the entries `isLive` says are stale, and the claim files of
    /// claims that died. Only while no claim can be under way (the caller
    /// holds the lock every claimer holds).
    public func sweep(isLive: (String, String) -> Bool) {
        guard FS.isDirectory(dir), let lock = try? FileLock.acquire(dir) else { return }
        defer { lock.unlock() }
        for n in FS.listDirectory(dir) {
            if n.hasPrefix(".claim-") { unlink(path(n)); continue }
            guard NameIndex.storable(n) else { continue }
            if let id = entry(n), isLive(n, id) { continue }
            unlink(path(n))
        }
    }

    /// The refusal of a claim: NAME's entry is held by container `id`.
    public struct Taken: Error, CustomStringConvertible {
        public let name: String
        public let id: String
        public var description: String { "the name \(quoted(name)) is already in use by container \(id.prefix(12))" }
    }
}

extension String {
    func trimmingNewlines() -> String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == "\r" || l == " " { s = s.dropLast() }
        return String(s)
    }
}
