// Our annotation keys: minicontainer's namespaced extension of the OCI
// `annotations` map, which runc and crun ignore (a bundle carrying them stays
// a valid OCI bundle). schema/annotations.schema.json documents the keys a
// bundle's config.json may carry, and schema/state.schema.json the ones the
// runtime adds to the state it prints; a unit test keeps the lists here and
// there equal. The keys are @inlinable: a caller in another module compiles
// to the string itself, as when each module spelt its own.

public enum Annotation {
    /// The prefix of every key of ours; an image's labels never carry one into a spec.
    @inlinable public static var prefix: String { "org.minicontainer." }

    // In config.json (run flags compile to them; schema/annotations.schema.json).

    /// The container's name (`--name`).
    @inlinable public static var name: String { "org.minicontainer.name" }
    /// The network mode: bridge, none, host or container:X (`--network`).
    @inlinable public static var network: String { "org.minicontainer.network" }
    /// Published ports, comma-separated canonical forms (`-p`).
    @inlinable public static var ports: String { "org.minicontainer.ports" }
    /// "true" when stdin is kept open (`-i`).
    @inlinable public static var interactive: String { "org.minicontainer.interactive" }
    /// The host path of the root filesystem (`--rootfs`).
    @inlinable public static var rootfs: String { "org.minicontainer.rootfs" }

    /// The image reference a container was run from (`run IMAGE`), as given.
    @inlinable public static var image: String { "org.minicontainer.image" }
    /// That image's id: "sha256:" and its config's digest. What `inspect`
    /// shows and image GC reads (an image in use is not removed).
    @inlinable public static var imageID: String { "org.minicontainer.image.id" }
    /// The signal `stop` sends first (`--stop-signal`, else the image's
    /// StopSignal; default SIGTERM).
    @inlinable public static var stopSignal: String { "org.minicontainer.stop-signal" }

    /// The restart policy (`--restart`): on-failure, on-failure:N, always or
    /// unless-stopped; absent for no. Read by the engine, not the runtime.
    @inlinable public static var restart: String { "org.minicontainer.restart" }
    /// The seconds `stop` waits before SIGKILL when not given -t (`--stop-timeout`).
    @inlinable public static var stopTimeout: String { "org.minicontainer.stop-timeout" }

    /// `--add-host`: NAME:IP entries, comma-separated, the first lines of
    /// the generated /etc/hosts.
    @inlinable public static var addHosts: String { "org.minicontainer.add-hosts" }
    /// `--dns`, `--dns-search`, `--dns-option`: comma-separated, replacing
    /// the host's nameservers, search domains ("." for none) and options in
    /// the generated /etc/resolv.conf.
    @inlinable public static var dns: String { "org.minicontainer.dns" }
    @inlinable public static var dnsSearch: String { "org.minicontainer.dns-search" }
    @inlinable public static var dnsOptions: String { "org.minicontainer.dns-options" }

    /// "true" (`--init`): the runtime's init stays as PID 1, forks the
    /// process, reaps orphans and forwards signals (Runtime/Reaper.swift).
    @inlinable public static var initProcess: String { "org.minicontainer.init" }

    /// A root the runtime mounts itself, in the container's mount namespace,
    /// before anything else: an overlay, as JSON {"lower": [top first...],
    /// "upper": DIR, "work": DIR} (absolute host paths). Rootless run mode
    /// writes it: an unprivileged user can mount an overlay only inside a
    /// user namespace of their own. root.path is then an empty directory,
    /// and a runtime that does not know the key runs nothing there.
    @inlinable public static var rootOverlay: String { "org.minicontainer.root.overlay" }

    /// Every key a bundle's config.json may carry, as the schema lists them.
    public static let bundleKeys = [name, network, ports, interactive, rootfs, image, imageID, stopSignal, restart, stopTimeout,
                                    addHosts, dns, dnsSearch, dnsOptions, initProcess, rootOverlay]

    // In the OCI state, added while a bridged container lives; never read
    // from config.json (schema/state.schema.json).

    /// The container's address on the bridge, without the prefix length.
    @inlinable public static var ip: String { "org.minicontainer.ip" }
    /// The bridge's address, the container's default route.
    @inlinable public static var gateway: String { "org.minicontainer.gateway" }

    /// Every key the printed state may add.
    public static let stateKeys = [ip, gateway]
}
