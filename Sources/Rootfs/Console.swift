import CShim
import Glibc
import Sys

// The container's terminal (CVE-2025-52565). The pty comes from the
// container's own devpts, and everything about it is checked by descriptor
// rather than trusted by path:
//
//  - /dev/pts/ptmx is opened O_PATH without following any symlink and must
//    be devpts' ptmx (the filesystem, inode 2, character device 5:2) before
//    it is opened for real (through our own procfs, ProcFS.reopen), so an
//    image cannot make us open, and hand to the console socket, some other
//    file or another devpts;
//  - the slave is the master's peer (TIOCGPTPEER), never /dev/pts/N looked
//    up by name, which a racing process could swap;
//  - for the init, the slave is bound over /dev/console by descriptor
//    (open_tree of the slave, move_mount onto the target's descriptor): the
//    target is opened in the root without following a symlink and must be a
//    regular file or a character device, so neither end of the bind can be
//    redirected to, say, /proc/sys/kernel/core_pattern.

public enum Console {
    /// A new pty pair from the current root's /dev/pts/ptmx: the master, the
    /// slave (O_RDWR|O_NOCTTY, close-on-exec) and the slave's name
    /// ("/dev/pts/N").
    public static func openPty() throws -> (master: Int32, slave: Int32, name: String) {
        let handle = mc_openat2(AT_FDCWD, "/dev/pts/ptmx", UInt64(UInt32(bitPattern: Kernel.O_PATH | O_NOFOLLOW | O_CLOEXEC)), 0,
                                Kernel.RESOLVE_NO_SYMLINKS | Kernel.RESOLVE_NO_MAGICLINKS)
        try check(handle, "open /dev/pts/ptmx")
        defer { close(handle) }
        try verifyPtmx(handle)
        var master: Int32
        do {
            master = try ProcFS.reopen(handle, O_RDWR | O_NOCTTY, what: "open /dev/pts/ptmx")
        } catch {
            // No procfs at all to reopen through: the path again, checked after.
            master = mc_openat2(AT_FDCWD, "/dev/pts/ptmx", UInt64(UInt32(bitPattern: O_RDWR | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC)),
                                0, Kernel.RESOLVE_NO_SYMLINKS | Kernel.RESOLVE_NO_MAGICLINKS)
            try check(master, "open /dev/pts/ptmx")
        }
        do {
            try verifyPtmx(master)
            try sameFile(master, handle, "/dev/pts/ptmx")
            var unlock: Int32 = 0
            try check(ioctl(master, Kernel.TIOCSPTLCK, &unlock), "unlock the pty")
            var n: UInt32 = 0
            try check(ioctl(master, Kernel.TIOCGPTN, &n), "get the pty number")
            let slave = ioctl(master, Kernel.TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)
            try check(slave, "open the pty's slave")
            var st = stat()
            guard fstatFS(slave)?.type == Kernel.DEVPTS_SUPER_MAGIC, fstat(slave, &st) == 0, st.st_mode & S_IFMT == S_IFCHR else {
                close(slave)
                throw SysError("the pty's slave is not on devpts", errno: ENODEV)
            }
            return (master, slave, "/dev/pts/\(n)")
        } catch {
            close(master)
            throw error
        }
    }

    /// devpts' own ptmx: on devpts, inode 2, character device 5:2.
    static func verifyPtmx(_ fd: Int32) throws {
        var st = stat()
        try check(fstat(fd, &st), "stat /dev/pts/ptmx")
        guard fstatFS(fd)?.type == Kernel.DEVPTS_SUPER_MAGIC, st.st_ino == 2, st.st_mode & S_IFMT == S_IFCHR,
              UInt64(st.st_rdev) == Rootfs.makedev(5, 2) else {
            throw SysError("/dev/pts/ptmx is not the ptmx of a devpts", errno: ENODEV)
        }
    }

    static func sameFile(_ a: Int32, _ b: Int32, _ what: String) throws {
        var x = stat(), y = stat()
        guard fstat(a, &x) == 0, fstat(b, &y) == 0, x.st_dev == y.st_dev, x.st_ino == y.st_ino else {
            throw SysError("\(what) changed while it was opened", errno: EXDEV)
        }
    }

    /// Binds the pty `slave` over the current root's /dev/console (created
    /// as an empty file when missing), by descriptor.
    public static func mount(slave: Int32) throws {
        let target = try consoleTarget()
        defer { close(target) }
        let tree = try cloneTree(slave, recursive: false, what: "bind the terminal on /dev/console")
        defer { close(tree) }
        try attach(tree, onto: target, what: "bind the terminal on /dev/console")
    }

    /// /dev/console, reached without a symlink: a regular file or a
    /// character device, never a symlink or a directory.
    static func consoleTarget() throws -> Int32 {
        let resolve = Kernel.RESOLVE_NO_SYMLINKS | Kernel.RESOLVE_NO_MAGICLINKS
        for _ in 0..<8 {
            var fd = mc_openat2(AT_FDCWD, "/dev/console", UInt64(UInt32(bitPattern: Kernel.O_PATH | O_NOFOLLOW | O_CLOEXEC)),
                                0, resolve)
            if fd < 0 && errno == ENOENT {
                let dev = mc_openat2(AT_FDCWD, "/dev", UInt64(UInt32(bitPattern: Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)), 0,
                                     resolve)
                try check(dev, "open /dev")
                fd = openat(dev, "console", O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
                let e = errno
                close(dev)
                if fd < 0 && e == EEXIST { continue }  // made meanwhile: look again
                if fd < 0 { throw SysError("create /dev/console", errno: e) }
            }
            try check(fd, "open /dev/console")
            var st = stat()
            if fstat(fd, &st) != 0 { let e = SysError("stat /dev/console"); close(fd); throw e }
            let type = st.st_mode & S_IFMT
            guard type == S_IFREG || type == S_IFCHR else {
                close(fd)
                throw SysError(type == S_IFLNK ? "/dev/console is a symlink"
                                               : "/dev/console is neither a file nor a character device",
                               errno: type == S_IFLNK ? ELOOP : EINVAL)
            }
            return fd
        }
        throw SysError("create /dev/console", errno: EAGAIN)
    }
}
