import JSON
import Network
import Spec
import Sys

// `inspect`: a run-mode container as Docker and podman print it (their keys
// and JSON types, so that `inspect -f '{{.State.Pid}}'` and scripts written
// for them work), derived from its metadata, its status, config.json (the
// OCI spec: process, resources, mounts, our annotations) and, while it
// lives, its OCI state (the address and gateway).

/// When a Docker timestamp is unset (never started, not finished).
let zeroTime = "0001-01-01T00:00:00Z"

extension Containers {
    /// Docker's inspect object of container `id` (null when its metadata is
    /// gone). `defaultCapabilities` is the set run gives without
    /// --cap-add/--cap-drop (Compile's): CapAdd and CapDrop are the
    /// differences from it.
    public func inspect(_ id: String, defaultCapabilities: [String] = []) -> JSONValue {
        guard let m = load(id) else { return .null }
        let spec = self.spec(id)
        let ann = spec?.annotations ?? [:]
        let args = spec?.process?.args ?? m.command
        var o = JSONObject()
        o["Id"] = .string(m.id)
        o["Created"] = .string(m.created.isEmpty ? zeroTime : m.created)
        o["Path"] = .string(args.first ?? "")
        o["Args"] = strings(Array(args.dropFirst()))

        let (state, text) = statusText(m)
        let live = liveStatus(id)
        var st = JSONObject()
        st["Status"] = .string(state)
        st["Running"] = .bool(state == "running" || state == "paused")
        st["Paused"] = .bool(state == "paused")
        st["Restarting"] = .bool(state == "restarting")
        st["OOMKilled"] = .bool(false)
        st["Dead"] = .bool(false)
        st["Pid"] = .int(Int64(state == "running" || state == "paused" ? live?.pid ?? 0 : 0))
        st["ExitCode"] = .int(Int64(m.exitCode ?? 0))
        st["Error"] = .string("")
        st["StartedAt"] = .string(m.started ?? zeroTime)
        st["FinishedAt"] = .string(m.finished ?? zeroTime)
        st["StatusText"] = .string(text)
        o["State"] = .object(st)

        o["Image"] = .string(m.imageID ?? "")
        o["ImageName"] = .string(m.image ?? "")
        o["Rootfs"] = .string(m.rootfs)
        o["ResolvConfPath"] = .string(dir(id) + "/resolv.conf")
        o["HostnamePath"] = .string(dir(id) + "/hostname")
        o["HostsPath"] = .string(dir(id) + "/hosts")
        o["LogPath"] = .string(logPath(id))
        o["Name"] = .string(m.name)
        o["RestartCount"] = .int(Int64(m.restartCount ?? 0))
        o["Driver"] = .string("overlay")
        o["Platform"] = .string("linux")
        o["OCIRuntime"] = .string("minicontainer")
        o["OCIConfigPath"] = .string(dir(id) + "/config.json")
        o["OCIRoot"] = .string(m.ociRoot)
        o["MountLabel"] = .string(spec?.linux?.mountLabel ?? "")
        o["ProcessLabel"] = .string(spec?.process?.selinuxLabel ?? "")
        o["AppArmorProfile"] = .string(spec?.process?.apparmorProfile ?? "")
        o["EffectiveCaps"] = strings(spec?.process?.capabilities?.effective ?? [])
        o["BoundingCaps"] = strings(spec?.process?.capabilities?.bounding ?? [])
        let layer = rootLayer(id)
        o["GraphDriver"] = .object(JSONObject([
            ("Name", .string("overlay")),
            ("Data", .object(JSONObject([("LowerDir", .string(m.rootfs)), ("UpperDir", .string(layer.upper)),
                                         ("WorkDir", .string(layer.work)), ("MergedDir", .string(layer.merged))]))),
        ]))

        // Mounts: the binds the user asked for, not the generated /etc files.
        var mounts: [JSONValue] = []
        var binds: [JSONValue] = []
        for mt in spec?.mounts ?? [] where mt.type == "bind" {
            guard let src = mt.source, !src.hasPrefix(dir(id) + "/") else { continue }
            let opts = mt.options ?? []
            let rw = !opts.contains("ro")
            let prop = opts.first { ["rprivate", "private", "rshared", "shared", "rslave", "slave"].contains($0) } ?? ""
            mounts.append(.object(JSONObject([("Type", .string("bind")), ("Source", .string(src)), ("Destination", .string(mt.destination)),
                                              ("Mode", .string(rw ? "" : "ro")), ("RW", .bool(rw)), ("Propagation", .string(prop))])))
            binds.append(.string(src + ":" + mt.destination + (rw ? "" : ":ro")))
        }
        o["Mounts"] = .array(mounts)

        let labels = containerLabels(ann)
        var cfg = JSONObject()
        cfg["Hostname"] = .string(spec?.hostname ?? "")
        cfg["Domainname"] = .string(spec?.domainname ?? "")
        cfg["User"] = .string(Containers.userText(spec?.process?.user))
        cfg["Tty"] = .bool(spec?.process?.terminal ?? false)
        cfg["OpenStdin"] = .bool(ann[Annotation.interactive] == "true")
        cfg["Env"] = strings(spec?.process?.env ?? [])
        cfg["Cmd"] = strings(args)
        cfg["Image"] = .string(m.image ?? "")
        cfg["WorkingDir"] = .string(spec?.process?.cwd ?? "")
        cfg["Entrypoint"] = strings([])
        cfg["Labels"] = .object(JSONObject(labels.map { ($0.key, .string($0.value)) }))
        cfg["Annotations"] = .object(JSONObject(ann.keys.sorted().map { ($0, .string(ann[$0]!)) }))
        cfg["StopSignal"] = .string(ann[Annotation.stopSignal] ?? "SIGTERM")
        cfg["StopTimeout"] = .int(ann[Annotation.stopTimeout].flatMap { Int64($0) } ?? 10)
        o["Config"] = .object(cfg)

        // HostConfig, from the spec's resources, capabilities and annotations.
        let res = spec?.linux?.resources
        let ports = (ann[Annotation.ports] ?? "").split(separator: ",").compactMap { try? PortMapping(String($0)) }
        var bindings = JSONObject()
        for p in ports {
            let key = "\(p.containerPort)/\(p.proto)"
            var list: [JSONValue] = []
            if case .array(let a)? = bindings[key] { list = a }
            list.append(.object(JSONObject([("HostIp", .string(p.hostIP?.description ?? "")), ("HostPort", .string(String(p.hostPort)))])))
            bindings[key] = .array(list)
        }
        let caps = spec?.process?.capabilities?.bounding ?? []
        // --privileged: every device allowed (its first and only rule).
        let privileged = res?.devices?.first.map { $0.allow && $0.type == nil && $0.major == nil } ?? false
        var hc = JSONObject()
        hc["Binds"] = .array(binds)
        hc["NetworkMode"] = .string(ann[Annotation.network] ?? "bridge")
        hc["PortBindings"] = .object(bindings)
        hc["RestartPolicy"] = .object(Containers.restartPolicy(ann[Annotation.restart]))
        hc["AutoRemove"] = .bool(m.autoRemove)
        hc["CapAdd"] = strings(privileged || defaultCapabilities.isEmpty ? [] : caps.filter { !defaultCapabilities.contains($0) })
        hc["CapDrop"] = strings(privileged || defaultCapabilities.isEmpty ? [] : defaultCapabilities.filter { !caps.contains($0) })
        hc["Privileged"] = .bool(privileged)
        hc["ReadonlyRootfs"] = .bool(spec?.root?.readonly ?? false)
        hc["Memory"] = .int(res?.memory?.limit ?? 0)
        hc["MemoryReservation"] = .int(res?.memory?.reservation ?? 0)
        hc["MemorySwap"] = .int(res?.memory?.swap ?? 0)
        var nano: Int64 = 0
        if let q = res?.cpu?.quota, q > 0, let per = res?.cpu?.period, per > 0 { nano = q * 1_000_000_000 / Int64(per) }
        hc["NanoCpus"] = .int(nano)
        hc["CpuShares"] = .int(Int64(res?.cpu?.shares ?? 0))
        hc["CpuQuota"] = .int(res?.cpu?.quota ?? 0)
        hc["CpuPeriod"] = .int(Int64(res?.cpu?.period ?? 0))
        hc["CpusetCpus"] = .string(res?.cpu?.cpus ?? "")
        hc["CpusetMems"] = .string(res?.cpu?.mems ?? "")
        hc["PidsLimit"] = .int(res?.pids?.limit ?? 0)
        hc["CgroupParent"] = .string(locations.cgroupParent)
        func list(_ key: String) -> JSONValue { strings((ann[key] ?? "").split(separator: ",").map(String.init)) }
        hc["Dns"] = list(Annotation.dns)
        hc["DnsSearch"] = list(Annotation.dnsSearch)
        hc["DnsOptions"] = list(Annotation.dnsOptions)
        hc["ExtraHosts"] = list(Annotation.addHosts)
        hc["Init"] = .bool(ann[Annotation.initProcess] == "true")
        hc["Sysctls"] = .object(JSONObject((spec?.linux?.sysctl ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
        o["HostConfig"] = .object(hc)

        // The address and gateway while the container lives (its OCI state
        // has them; they are released when it stops).
        let rec = live != nil ? try? runtime(of: id).store.load(id) : nil
        var ns = JSONObject()
        let address = rec.flatMap { Containers.address(of: $0) }.map { $0.description } ?? ""
        let prefix = rec?.network?["address"].flatMap { $0.split(separator: "/").last.flatMap { Int64(String($0)) } } ?? 0
        let gateway = rec?.network?["gateway"] ?? ""
        ns["IPAddress"] = .string(address)
        ns["IPPrefixLen"] = .int(prefix)
        ns["Gateway"] = .string(gateway)
        ns["Bridge"] = .string(rec?.network?["bridge"] ?? "")
        ns["Ports"] = .object(live != nil ? bindings : JSONObject())
        ns["SandboxKey"] = .string(live.map { "/proc/\($0.pid)/ns/net" } ?? "")
        var networks = JSONObject()
        if !address.isEmpty {
            networks["bridge"] = .object(JSONObject([("IPAddress", .string(address)), ("IPPrefixLen", .int(prefix)), ("Gateway", .string(gateway))]))
        }
        ns["Networks"] = .object(networks)
        o["NetworkSettings"] = .object(ns)
        return .object(o)
    }

    /// Config.User: the username, or uid:gid unless both are 0.
    static func userText(_ u: User?) -> String {
        guard let u = u else { return "" }
        if let n = u.username, !n.isEmpty { return n }
        return u.uid == 0 && u.gid == 0 ? "" : "\(u.uid):\(u.gid)"
    }

    /// `on-failure:3` -> {"Name": "on-failure", "MaximumRetryCount": 3};
    /// none -> podman's empty name.
    static func restartPolicy(_ a: String?) -> JSONObject {
        let parts = (a ?? "").split(separator: ":", maxSplits: 1).map(String.init)
        return JSONObject([("Name", .string(parts.first ?? "")), ("MaximumRetryCount", .int(parts.count == 2 ? Int64(parts[1]) ?? 0 : 0))])
    }
}

func strings(_ a: [String]) -> JSONValue { .array(a.map { .string($0) }) }
