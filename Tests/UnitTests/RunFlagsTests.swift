import Compile
import Network
import Spec
import XCTest

/// The run flags of issue 16 (restart, stop, env files, labels, mounts,
/// limits, DNS, ports, init) compiled against a fake host: their
/// annotations and spec fields, and a one-line error for each bad value.
final class RunFlagsTests: XCTestCase {
    var files: [String: String] = [:]
    var environment: [String: String] = [:]

    func host() -> Compile.Host {
        Compile.Host(realPath: { $0.hasPrefix("/missing") ? nil : $0 }, isDirectory: { $0 == "/rootfs" || $0.hasPrefix("/dir") },
                     environment: { self.environment[$0] }, readFile: { self.files[$0] })
    }

    func spec(_ edit: (inout RunFlags) -> Void) throws -> Spec {
        var f = RunFlags()
        f.rootfs = "/rootfs"
        f.network = "none"
        f.command = ["/bin/true"]
        edit(&f)
        return try compile(f, host: host())
    }

    func annotation(_ key: String, _ edit: (inout RunFlags) -> Void) throws -> String? {
        try spec(edit).annotations?[key]
    }

    func error(_ edit: (inout RunFlags) -> Void) -> String? {
        do {
            _ = try spec(edit)
            return nil
        } catch let e as CompileError {
            XCTAssertFalse(e.message.contains("\n"), e.message)
            return e.message
        } catch {
            return "not a CompileError: \(error)"
        }
    }

    // MARK: --restart, --stop-timeout, --stop-signal

    func testRestartCanonicalForms() throws {
        XCTAssertNil(try annotation(Annotation.restart) { _ in })
        XCTAssertNil(try annotation(Annotation.restart) { $0.restart = "no" })
        XCTAssertEqual(try annotation(Annotation.restart) { $0.restart = "always" }, "always")
        XCTAssertEqual(try annotation(Annotation.restart) { $0.restart = "unless-stopped" }, "unless-stopped")
        XCTAssertEqual(try annotation(Annotation.restart) { $0.restart = "on-failure" }, "on-failure")
        XCTAssertEqual(try annotation(Annotation.restart) { $0.restart = "on-failure:3" }, "on-failure:3")
    }

    func testRestartRefusals() {
        XCTAssertEqual(error { $0.restart = "bogus" }, "invalid --restart \"bogus\": use no, on-failure[:N], always or unless-stopped")
        XCTAssertEqual(error { $0.restart = "always:3" }, "invalid --restart \"always:3\": only on-failure takes a retry count")
        for n in ["0", "-1", "x", "", "+3", "99999999999", "3 "] {
            XCTAssertEqual(error { $0.restart = "on-failure:" + n },
                           "invalid --restart \"on-failure:\(n)\": the retry count must be a positive integer", n)
        }
    }

    func testRmWithARestartPolicyIsRefused() {
        XCTAssertEqual(error { $0.restart = "always"; $0.autoRemove = true },
                       "the --rm option conflicts with --restart always: the restart policy must be no")
        XCTAssertNil(error { $0.restart = "no"; $0.autoRemove = true })
    }

    func testStopTimeout() throws {
        XCTAssertEqual(try annotation(Annotation.stopTimeout) { $0.stopTimeout = "0" }, "0")
        XCTAssertEqual(try annotation(Annotation.stopTimeout) { $0.stopTimeout = "30" }, "30")
        XCTAssertEqual(try annotation(Annotation.stopTimeout) { $0.stopTimeout = "007" }, "7")
        for t in ["-1", "x", "", "+1", "1.5", "99999999999"] {
            XCTAssertEqual(error { $0.stopTimeout = t }, "invalid --stop-timeout \(quoted(t)): use a number of seconds (0 or more)", t)
        }
    }

    func testStopSignalReplacesTheImages() throws {
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.stopSignal = "quit" }, "SIGQUIT")
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.stopSignal = "9" }, "SIGKILL")
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.stopSignal = "RTMIN+2" }, "36")
        var image = ImageDefaults(reference: "x", id: "sha256:" + String(repeating: "a", count: 64), layers: ["/rootfs"])
        image.run.stopSignal = "SIGUSR1"
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.rootfs = nil; $0.image = image }, "SIGUSR1")
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.rootfs = nil; $0.image = image; $0.stopSignal = "HUP" }, "SIGHUP")
        for s in ["0", "BOGUS", "", "65"] {
            XCTAssertEqual(error { $0.stopSignal = s }, "invalid --stop-signal \(quoted(s)): not a signal name or number", s)
        }
    }

    // MARK: --env-file, --label, --label-file

    func testKeyValueFileDockersFormat() throws {
        let text = "\u{FEFF}# comment\n  A=1\r\n\t B=has spaces  \nC=\"quoted\"\n\n   # indented\nD\nE=x=y\nF="
        XCTAssertEqual(try parseKeyValueFile(text, flag: "--env-file", path: "f"),
                       ["A=1", "B=has spaces  ", "C=\"quoted\"", "D", "E=x=y", "F="])
        XCTAssertEqual(try parseKeyValueFile("", flag: "--env-file", path: "f"), [])
    }

    func testKeyValueFileErrorsNameFileAndLine() {
        func err(_ text: String) -> String? {
            do { _ = try parseKeyValueFile(text, flag: "--env-file", path: "/e"); return nil } catch let e as CompileError {
                XCTAssertFalse(e.message.contains("\n"))
                return e.message
            } catch { return "\(error)" }
        }
        XCTAssertEqual(err("A=1\nBAD KEY=2"), "--env-file /e, line 2: the name \"BAD KEY\" contains whitespace or a control character")
        XCTAssertEqual(err("#\n\n=1"), "--env-file /e, line 3: no variable name before \"=\"")
        XCTAssertEqual(err("A\u{1}=1"), "--env-file /e, line 1: the name \"A\\x01\" contains whitespace or a control character")
        XCTAssertEqual(err("E "), "--env-file /e, line 1: the name \"E \" contains whitespace or a control character")
    }

    func testEnvFileBeforeDashE() throws {
        files["/e1"] = "A=file\nB=file\nHOME_X\nUNSET\n"
        files["/e2"] = "B=second"
        environment["HOME_X"] = "caller"
        let env = try spec { $0.envFiles = ["/e1", "/e2"]; $0.env = ["A=flag"] }.process!.env!
        XCTAssertEqual(Array(env.suffix(3)), ["HOME_X=caller", "B=second", "A=flag"])
        XCTAssertFalse(env.contains { $0.hasPrefix("UNSET") })
        XCTAssertEqual(error { $0.envFiles = ["/missing"] }, "--env-file /missing: cannot be read (no such file, or not a text file)")
    }

    func testLabelsOverTheImagesAndNeverOurs() throws {
        files["/l"] = "team=infra\nflag\n"
        var image = ImageDefaults(reference: "x", id: "sha256:" + String(repeating: "a", count: 64), layers: ["/rootfs"])
        image.run.labels = ["team": "image", "img": "1"]
        let ann = try spec { $0.rootfs = nil; $0.image = image; $0.labelFiles = ["/l"]; $0.labels = ["team=web", "v=a=b", "e"] }.annotations!
        XCTAssertEqual(ann["team"], "web")
        XCTAssertEqual(ann["img"], "1")
        XCTAssertEqual(ann["flag"], "")
        XCTAssertEqual(ann["e"], "")
        XCTAssertEqual(ann["v"], "a=b")
        XCTAssertEqual(error { $0.labels = ["org.minicontainer.network=host"] },
                       "invalid label \"org.minicontainer.network\": keys starting with org.minicontainer. are minicontainer's own")
        XCTAssertEqual(error { $0.labels = ["=v"] }, "invalid label \"=v\": the key is empty")
        files["/bad"] = "org.minicontainer.name=x"
        XCTAssertNotNil(error { $0.labelFiles = ["/bad"] })
    }

    // MARK: --entrypoint

    func testEntrypointWithAndWithoutAnImage() throws {
        XCTAssertEqual(try spec { $0.entrypoint = "/bin/echo"; $0.command = ["a"] }.process!.args, ["/bin/echo", "a"])
        XCTAssertEqual(try spec { $0.entrypoint = ""; $0.command = ["/bin/echo", "a"] }.process!.args, ["/bin/echo", "a"])
        XCTAssertEqual(try spec { $0.entrypointList = ["/bin/sh", "-c"]; $0.command = ["echo"] }.process!.args, ["/bin/sh", "-c", "echo"])
        var image = ImageDefaults(reference: "x", id: "sha256:" + String(repeating: "a", count: 64), layers: ["/rootfs"])
        image.run.entrypoint = ["/bin/echo", "ep"]
        image.run.cmd = ["cmd"]
        func args(_ edit: @escaping (inout RunFlags) -> Void) throws -> [String] {
            try spec { $0.rootfs = nil; $0.image = image; $0.command = []; edit(&$0) }.process!.args!
        }
        XCTAssertEqual(try args { _ in }, ["/bin/echo", "ep", "cmd"])
        XCTAssertEqual(try args { $0.command = ["x"] }, ["/bin/echo", "ep", "x"])
        XCTAssertEqual(try args { $0.entrypoint = "/bin/ls" }, ["/bin/ls"])  // the image's Cmd goes too
        XCTAssertEqual(try args { $0.entrypoint = ""; $0.command = ["/bin/true"] }, ["/bin/true"])
        XCTAssertEqual(error { $0.rootfs = nil; $0.image = image; $0.command = []; $0.entrypoint = "" },
                       "no command given and image x has no Entrypoint or Cmd: put one after the image")
    }

    // MARK: --ulimit

    func testUlimits() throws {
        let r = try spec { $0.ulimits = ["nofile=1024:4096", "core=0", "stack=-1", "nofile=2048:4096"] }.process!.rlimits!
        XCTAssertEqual(r, [Rlimit(type: "RLIMIT_NOFILE", hard: 4096, soft: 2048), Rlimit(type: "RLIMIT_CORE", hard: 0, soft: 0),
                           Rlimit(type: "RLIMIT_STACK", hard: UInt64.max, soft: UInt64.max)])
        XCTAssertEqual(try parseUlimit("nproc=10:-1"), Rlimit(type: "RLIMIT_NPROC", hard: UInt64.max, soft: 10))
        XCTAssertNil(try spec { _ in }.process!.rlimits)
        XCTAssertEqual(error { $0.ulimits = ["nofile=100:50"] }, "invalid --ulimit \"nofile=100:50\": the soft limit is above the hard limit")
        XCTAssertEqual(error { $0.ulimits = ["nofile=-1:50"] }, "invalid --ulimit \"nofile=-1:50\": the soft limit is above the hard limit")
        XCTAssertEqual(error { $0.ulimits = ["nofile"] }, "invalid --ulimit \"nofile\": use NAME=SOFT[:HARD], e.g. nofile=1024:4096")
        XCTAssertEqual(error { $0.ulimits = ["nofile=1:2:3"] }, "invalid --ulimit \"nofile=1:2:3\": use NAME=SOFT[:HARD], e.g. nofile=1024:4096")
        XCTAssertTrue(error { $0.ulimits = ["bogus=1"] }!.hasPrefix("invalid --ulimit \"bogus=1\": unknown limit \"bogus\" (use as, core,"))
        for v in ["x", "", "-2", "+1", "1.5", "18446744073709551615", "99999999999999999999"] {
            XCTAssertEqual(error { $0.ulimits = ["nofile=" + v] },
                           "invalid --ulimit \"nofile=\(v)\": \(quoted(v)) is not a limit (a number, or -1 for unlimited)", v)
        }
    }

    // MARK: --mount, --tmpfs, --shm-size

    func testCSVFieldsAsGosEncodingCSV() throws {
        XCTAssertEqual(try csvFields("a,b"), ["a", "b"])
        XCTAssertEqual(try csvFields("\"src=/a,b\",dst=/c"), ["src=/a,b", "dst=/c"])
        XCTAssertEqual(try csvFields("\"x\"\"y\",z"), ["x\"y", "z"])
        XCTAssertEqual(try csvFields(""), [""])
        XCTAssertEqual(try csvFields("a,"), ["a", ""])
        XCTAssertEqual(try csvFields("\"\""), [""])
        XCTAssertThrowsError(try csvFields("src=\"/a,b\""))
        XCTAssertThrowsError(try csvFields("\"a\"b"))
        XCTAssertThrowsError(try csvFields("\"unclosed"))
    }

    func mounts(_ edit: (inout RunFlags) -> Void) throws -> [Mount] {
        let all = try spec(edit).mounts!
        return Array(all.dropFirst(Spec.defaultMounts().count))
    }

    func testMountBindTmpfsAndVolume() throws {
        XCTAssertEqual(try mounts { $0.mounts = ["type=bind,\"source=/h,x=1\",target=/a=b,readonly"] },
                       [Mount(destination: "/a=b", type: "bind", source: "/h,x=1", options: ["rbind", "rprivate", "ro"])])
        XCTAssertEqual(try mounts { $0.mounts = ["TYPE=bind,src=/h,dst=/a/./b/,ro=false,bind-propagation=rshared,bind-nonrecursive"] },
                       [Mount(destination: "/a/b", type: "bind", source: "/h", options: ["bind", "rshared"])])
        XCTAssertEqual(try mounts { $0.mounts = ["type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700,ro"] },
                       [Mount(destination: "/t", type: "tmpfs", source: "tmpfs",
                              options: ["ro", "size=1048576", "mode=700", "rprivate", "nosuid", "nodev", "tmpcopyup"])])
        XCTAssertEqual(try parseMount("type=volume,src=data,dst=/v,ro", host: host()), .volume("data:/v:ro"))
        XCTAssertEqual(try parseMount("type=volume,src=data,dst=/v,volume-nocopy", host: host()), .volume("data:/v"))
    }

    func testMountRefusals() {
        let cases: [(String, String)] = [
            ("type=bind,src=/h", "dst= (the container path) is required"),
            ("src=/h,dst=/a", "type= is required (bind, tmpfs or volume)"),
            ("type=nfs,dst=/a", "type=\"nfs\": use bind, tmpfs or volume"),
            ("type=bind,dst=/a", "type=bind needs src= (the host path)"),
            ("type=bind,src=rel,dst=/a", "the host path \"rel\" must be absolute"),
            ("type=bind,src=/h,dst=a", "the container path \"a\" must be absolute"),
            ("type=bind,src=/h,dst=/a/../b", "the container path must not be / or contain .."),
            ("type=bind,src=/h,dst=/", "the container path must not be / or contain .."),
            ("type=bind,src=/h,dst=/a,bogus", "unknown option \"bogus\""),
            ("type=bind,src=/h,dst=/a,,ro", "an empty field"),
            ("type=bind,src=/h,dst=/a,dst=/b", "dst is given twice"),
            ("type=bind,src=/h,target=/a,destination=/b", "destination is given twice"),
            ("type=bind,src=/h,dst=/a,ro=maybe", "ro=\"maybe\": use true or false"),
            ("type=bind,src=/h,dst=/a,bind-propagation=weird", "bind-propagation=\"weird\": use private, rprivate, shared, rshared, slave or rslave"),
            ("type=bind,src=/h,dst=/a,tmpfs-size=1m", "tmpfs-size is only for type=tmpfs"),
            ("type=tmpfs,src=/h,dst=/a", "type=tmpfs takes no src="),
            ("type=tmpfs,dst=/a,tmpfs-size=lots", "tmpfs-size=\"lots\": use a size such as 64m"),
            ("type=tmpfs,dst=/a,tmpfs-mode=999", "tmpfs-mode=\"999\": use octal permission bits such as 1777"),
            ("type=tmpfs,dst=/a,bind-propagation=shared", "bind-propagation is only for type=bind"),
            ("type=volume,dst=/a", "type=volume needs src= (the volume's name)"),
            ("type=volume,src=/h,dst=/a", "\"/h\" is not a volume name (letters, digits, _ . -; for a host path use type=bind)"),
            ("type=volume,src=../x,dst=/a", "\"../x\" is not a volume name (letters, digits, _ . -; for a host path use type=bind)"),
            ("type=volume,src=v,dst=/a:b", "a volume's container path cannot contain \":\""),
            ("type=bind,src=\"/a,b\",dst=/c", "a bare \" in a field that is not quoted (quote the whole field: \"src=...\")"),
        ]
        for (m, why) in cases {
            XCTAssertEqual(error { $0.mounts = [m] }, "invalid --mount \(quoted(m)): \(why)", m)
        }
        XCTAssertEqual(error { $0.mounts = ["type=bind,src=/missing,dst=/a"] },
                       "--mount \"type=bind,src=/missing,dst=/a\": host path /missing does not exist")
    }

    func testTmpfs() throws {
        XCTAssertEqual(try parseTmpfs("/t"), Mount(destination: "/t", type: "tmpfs", source: "tmpfs",
                                                   options: ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]))
        XCTAssertEqual(try parseTmpfs("/t/:ro,size=10m,mode=1777,noexec,suid,uid=1000,gid=0,nr_inodes=100,notmpcopyup,shared").options,
                       ["ro", "size=10m", "mode=1777", "noexec", "suid", "uid=1000", "gid=0", "nr_inodes=100", "shared", "nodev"])
        XCTAssertEqual(try parseTmpfs("/t:size=50%").options!.first, "size=50%")
        let bad: [(String, String)] = [
            ("t", "the container path \"t\" must be absolute"),
            ("/a/../b", "the container path must not be / or contain .."),
            ("/:size=1m", "the container path must not be / or contain .."),
            ("/t:size=1x", "size=\"1x\": use a size such as 64m, or a percentage such as 50%"),
            ("/t:size=0", "size=\"0\": use a size such as 64m, or a percentage such as 50%"),
            ("/t:size=%", "size=\"%\": use a size such as 64m, or a percentage such as 50%"),
            ("/t:mode=999", "mode=\"999\": use octal permission bits such as 1777"),
            ("/t:uid=x", "uid=\"x\": use a number"),
            ("/t:bogus", "unknown tmpfs option \"bogus\""),
            ("/t:ro,,rw", "an empty option"),
            ("/t:ro,ro", "ro is given twice"),
            ("/t:mode=700,mode=755", "mode is given twice"),
            ("/t:nosuid=1", "unknown tmpfs option \"nosuid=1\""),
        ]
        for (t, why) in bad {
            XCTAssertEqual(error { $0.tmpfs = [t] }, "invalid --tmpfs \(quoted(t)): \(why)", t)
        }
    }

    func testMountsAreSortedShallowFirstAndNeverTwice() throws {
        let m = try mounts { $0.volumes = ["/h:/data/in"]; $0.tmpfs = ["/data"]; $0.mounts = ["type=tmpfs,dst=/a/b/c"] }
        XCTAssertEqual(m.map(\.destination), ["/data", "/data/in", "/a/b/c"])
        XCTAssertEqual(error { $0.volumes = ["/h:/data"]; $0.tmpfs = ["/data/"] }, "--tmpfs \"/data/\": /data is mounted twice")
        XCTAssertEqual(error { $0.volumes = ["/h:/data", "/g:/data"] }, "volume \"/g:/data\": /data is mounted twice")
    }

    func testShmSize() throws {
        func shm(_ s: String) throws -> [String]? {
            try spec { $0.shmSize = s }.mounts!.first { $0.destination == "/dev/shm" }?.options
        }
        XCTAssertEqual(try shm("1g"), ["nosuid", "noexec", "nodev", "mode=1777", "size=1048576k"])
        XCTAssertEqual(try shm("1000"), ["nosuid", "noexec", "nodev", "mode=1777", "size=1000"])
        for s in ["0", "x", "-1m", ""] {
            XCTAssertEqual(error { $0.shmSize = s }, "invalid --shm-size \(quoted(s)): use a positive size such as 64m or 1g", s)
        }
    }

    // MARK: --add-host, --dns, --dns-search, --dns-option

    func testIPAddresses() {
        for ok in ["1.2.3.4", "0.0.0.0", "255.255.255.255", "::1", "::", "fd00::1", "2001:db8:0:0:0:0:0:1", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8"] {
            XCTAssertTrue(isIPAddress(ok), ok)
        }
        for bad in ["1.2.3", "1.2.3.256", "01.2.3.4", "1.2.3.4 ", "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "g::1", "12345::1",
                    "1.2.3.4\n", "", "host-gateway", "::1 x"] {
            XCTAssertFalse(isIPAddress(bad), bad)
        }
    }

    func testDNSAnnotations() throws {
        let ann = try spec { $0.addHosts = ["db:10.0.0.1", "v6=fd00::1", "b:[::1]"]; $0.dns = ["1.1.1.1", "::1"]
                             $0.dnsSearch = ["a.example", "b"]; $0.dnsOptions = ["ndots:2", "rotate"] }.annotations!
        XCTAssertEqual(ann[Annotation.addHosts], "db:10.0.0.1,v6:fd00::1,b:::1")
        XCTAssertEqual(ann[Annotation.dns], "1.1.1.1,::1")
        XCTAssertEqual(ann[Annotation.dnsSearch], "a.example,b")
        XCTAssertEqual(ann[Annotation.dnsOptions], "ndots:2,rotate")
        XCTAssertNil(try spec { _ in }.annotations![Annotation.dns])
        XCTAssertEqual(error { $0.addHosts = ["a b:1.2.3.4"] }, "invalid --add-host \"a b:1.2.3.4\": \"a b\" is not a host name (letters, digits, - _ .)")
        XCTAssertEqual(error { $0.addHosts = ["db"] }, "invalid --add-host \"db\": use NAME:IP")
        XCTAssertEqual(error { $0.addHosts = ["db:1.2.3.4\n5.6.7.8 x"] }, "invalid --add-host \"db:1.2.3.4\\n5.6.7.8 x\": \"1.2.3.4\\n5.6.7.8 x\" is not an IP address")
        XCTAssertEqual(error { $0.addHosts = ["db:host-gateway"] }, "invalid --add-host \"db:host-gateway\": host-gateway is not supported (as podman 4.3): give the address")
        XCTAssertEqual(error { $0.dns = ["x"] }, "invalid --dns \"x\": not an IP address")
        XCTAssertEqual(error { $0.dnsSearch = ["a b"] }, "invalid --dns-search \"a b\": not a domain name (letters, digits, - _ ., or . for none)")
        XCTAssertEqual(error { $0.dnsSearch = [".", "a"] }, "--dns-search . (no search domains) cannot be given with other search domains")
        XCTAssertEqual(error { $0.dnsOptions = ["a#b"] }, "invalid --dns-option \"a#b\": use an option of resolv.conf such as ndots:2 or rotate")
        XCTAssertNotNil(error { $0.dnsOptions = ["ndots:1\nnameserver 6.6.6.6"] })
    }

    /// The engine's files drop what compile would have refused: a bundle's
    /// annotations are not trusted to have come from compile.
    func testHostsAndResolvConfDropInjections() {
        let hosts = Network.hostsFile(hostname: "h", address: nil, extra: ["ok:1.2.3.4", "bad name:1.2.3.4", "x:1.2.3.4\n6.6.6.6 y", "#c:1.1.1.1", "noip"])
        XCTAssertTrue(hosts.hasPrefix("1.2.3.4\tok\n127.0.0.1\tlocalhost\n"), hosts)
        XCTAssertFalse(hosts.contains("6.6.6.6") || hosts.contains("bad") || hosts.contains("#"))
        let host = "nameserver 10.0.0.1\nsearch host.example\noptions timeout:1\n"
        XCTAssertEqual(Network.resolvConf(host: host), "nameserver 10.0.0.1\nsearch host.example\noptions timeout:1\n")
        XCTAssertEqual(Network.resolvConf(host: host, servers: ["9.9.9.9", "1.1.1.1\nnameserver 6.6.6.6"], search: ["a.example", "b c"],
                                          options: ["ndots:2", "x #"]),
                       "search a.example\nnameserver 9.9.9.9\noptions ndots:2\n")
        XCTAssertEqual(Network.resolvConf(host: host, search: ["."], options: ["rotate"]), "nameserver 10.0.0.1\noptions rotate\n")
    }

    // MARK: -p, -P

    func testPortForms() throws {
        XCTAssertEqual(try parsePorts("80"), ["0:80/tcp"])
        XCTAssertEqual(try parsePorts("53/udp"), ["0:53/udp"])
        XCTAssertEqual(try parsePorts("127.0.0.1::80"), ["127.0.0.1:0:80/tcp"])
        XCTAssertEqual(try parsePorts("8000-8002:80-82"), ["8000:80/tcp", "8001:81/tcp", "8002:82/tcp"])
        XCTAssertEqual(try parsePorts("127.0.0.1:8000-8001:80-81/udp"), ["127.0.0.1:8000:80/udp", "127.0.0.1:8001:81/udp"])
        XCTAssertEqual(try parsePorts("80-81"), ["0:80/tcp", "0:81/tcp"])
        XCTAssertEqual(try parsePorts("9000:9000"), ["9000:9000/tcp"])
        XCTAssertEqual(error { $0.network = "bridge"; $0.publish = ["8000-8002:80"] },
                       "invalid port \"8000-8002:80\": the host and container port ranges have different lengths (3 and 1)")
        XCTAssertEqual(error { $0.network = "bridge"; $0.publish = ["8000:80-81"] },
                       "invalid port \"8000:80-81\": the host and container port ranges have different lengths (1 and 2)")
        XCTAssertEqual(error { $0.network = "bridge"; $0.publish = ["8002-8000:80-82"] },
                       "invalid port \"8002-8000:80-82\": the range 8002-8000 ends before it starts")
        for bad in [":80", "0-1:80-81", "80:0", "80-", "1-2-3", "080", "65536", ""] {
            XCTAssertNotNil(error { $0.network = "bridge"; $0.publish = [bad] }, bad)
        }
    }

    func testPortsAnnotationAndDuplicates() throws {
        let ann = try spec { $0.network = "bridge"; $0.publish = ["80", "80", "8000-8001:90-91", "127.0.0.1::53/udp"] }.annotations!
        XCTAssertEqual(ann[Annotation.ports], "0:80/tcp,0:80/tcp,8000:90/tcp,8001:91/tcp,127.0.0.1:0:53/udp")
        XCTAssertEqual(error { $0.network = "bridge"; $0.publish = ["8000-8001:90-91", "8001:92"] }, "port 8001/tcp is published twice")
        XCTAssertNil(error { $0.network = "bridge"; $0.publish = ["8001:92", "8001:92/udp"] })
    }

    func testPublishAllTakesTheImagesExposedPorts() throws {
        var image = ImageDefaults(reference: "x", id: "sha256:" + String(repeating: "a", count: 64), layers: ["/rootfs"])
        image.exposedPorts = ["80/tcp", "53/udp", "8080"]
        image.run.cmd = ["/bin/true"]
        func ports(_ edit: @escaping (inout RunFlags) -> Void) throws -> String? {
            try spec { $0.rootfs = nil; $0.image = image; $0.network = "bridge"; $0.command = []; edit(&$0) }.annotations![Annotation.ports]
        }
        XCTAssertNil(try ports { _ in })
        XCTAssertEqual(try ports { $0.publishAll = true }, "0:53/udp,0:80/tcp,0:8080/tcp")
        XCTAssertEqual(try ports { $0.publishAll = true; $0.publish = ["9000:80"] }, "9000:80/tcp,0:53/udp,0:8080/tcp")
        XCTAssertNil(try spec { $0.network = "bridge"; $0.publishAll = true }.annotations![Annotation.ports])  // --rootfs: nothing exposed
        image.exposedPorts = ["http"]
        XCTAssertEqual(error { $0.rootfs = nil; $0.image = image; $0.network = "bridge"; $0.publishAll = true },
                       "image x: invalid ExposedPorts entry \"http\" (PORT[/tcp|udp])")
    }
}
