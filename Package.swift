// swift-tools-version:5.9
import PackageDescription
#if canImport(Glibc)
import Glibc
#endif

// The runtime binary links no Foundation: every module below imports only
// the Swift standard library, Glibc and the C targets.
let package = Package(
    name: "minicontainer",
    products: [
        .executable(name: "minicontainer", targets: ["minicontainer"]),
    ],
    targets: [
        // Native libraries, as system-library targets.
        // jansson: only the unit tests' oracle for our JSON parser (JSONDifferentialTests).
        .systemLibrary(name: "CJansson", path: "Sources/CJansson"),
        .systemLibrary(name: "CLibcap", path: "Sources/CLibcap"),
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp"),
        // libarchive (tar parsing), zlib and libzstd (layer decompression), for images only.
        .systemLibrary(name: "CArchive", path: "Sources/CArchive"),
        // libcurl (HTTP and TLS with OpenSSL), for the registry client only.
        .systemLibrary(name: "CCurl", path: "Sources/CCurl"),
        // The few syscalls Swift's Glibc module hides.
        .target(name: "CShim", path: "Sources/CShim"),

        // JSON value, our strict parser, stdlib Decoder/Encoder, writer.
        .target(name: "JSON", linkerSettings: [.linkedLibrary("m")]),
        // The one error type, errno-carrying system calls, files, logging (bounded
        // lines: Spec's Quote), kernel constants, the clock, cgroup mounts, Locations.
        .target(name: "Sys", dependencies: ["CShim", "Spec"]),
        // OCI runtime-spec types (no imports) and their validation, our
        // annotation keys, lexical path cleaning.
        .target(name: "Spec"),
        // config.json -> Spec without Codable's runtime generics (hand-written, same errors).
        .target(name: "SpecJSON", dependencies: ["JSON", "Spec"]),
        // Docker-style run flags -> OCI spec.
        .target(name: "Compile", dependencies: ["Spec"]),
        // The container's filesystem: mounts, devices, pivot_root, masked paths.
        .target(name: "Rootfs", dependencies: ["Spec", "Sys", "CShim"]),
        // What the init drops before exec: rlimits, user, capabilities, seccomp.
        .target(name: "Privileges", dependencies: ["Spec", "Sys", "CShim", "CLibcap", "CSeccomp"]),
        // cgroup v1 and v2 managers behind one interface.
        .target(name: "Cgroups", dependencies: ["Spec", "Sys", "CShim"]),
        // The bundle, state store, init protocol and the create/start/kill/delete
        // lifecycle; networks come in through a NetworkDriver (Network only for
        // the spec's own linux.netDevices, NetDevices.swift).
        .target(name: "Runtime", dependencies: ["JSON", "Spec", "SpecJSON", "Sys", "CShim", "Rootfs", "Privileges", "Cgroups", "Network"]),
        // The Docker-style engine on top of bundles: metadata and names, the
        // root layer, run, the detached monitor, teardown, inspect; the bridge
        // NetworkDriver.
        .target(name: "Engine", dependencies: ["JSON", "Spec", "Sys", "CShim", "Rootfs", "Runtime", "Network", "Image"]),
        // Images: the content-addressed store, load/import/save of archives,
        // safe layer unpacking.
        .target(name: "Image", dependencies: ["JSON", "Spec", "Sys", "CShim", "CArchive"]),
        // The registry client: distribution v2 over libcurl, auth, pull into the store.
        .target(name: "Registry", dependencies: ["JSON", "Spec", "Sys", "CShim", "CCurl", "Image"]),
        // Bridge, veth, address leases, NAT and published ports (rtnetlink).
        .target(name: "Network", dependencies: ["Spec", "Sys", "CShim"]),
        // Command table, argv parser and the commands.
        .target(name: "CLI", dependencies: ["JSON", "Spec", "SpecJSON", "Compile", "Sys", "CShim", "Rootfs", "Runtime", "Engine", "Network", "Image", "Registry"]),
        .executableTarget(name: "minicontainer", dependencies: ["CLI"]),

        .testTarget(name: "UnitTests", dependencies: ["JSON", "Spec", "SpecJSON", "Compile", "Sys", "CLI", "Rootfs", "Privileges", "Cgroups", "Runtime", "Engine", "Network", "Image", "Registry", "CJansson"], path: "Tests/UnitTests"),
    ]
)

// libFuzzer targets (Tests/Fuzz, `make fuzz`): only with MC_FUZZ=1, so that
// normal builds and `swift test` never see them. Built into their own
// scratch path with -sanitize=fuzzer over every module (Tests/Fuzz/fuzz.sh).
// Test code, like the test target: not modules of ARCHITECTURE.md's layers
// (its check, ArchitectureTests, reads the literal targets above only).
if getenv("MC_FUZZ").map({ String(cString: $0) }) == "1" {
    let support = (target: "FuzzSupport", deps: ["Compile"] as [Target.Dependency])
    package.targets.append(.target(name: support.target, dependencies: support.deps, path: "Tests/Fuzz/" + support.target))
    let fuzz: [(product: String, target: String, deps: [Target.Dependency])] = [
        ("fuzz-config", "FuzzConfig", ["FuzzSupport", "JSON", "Spec", "SpecJSON"]),
        ("fuzz-args", "FuzzArgs", ["FuzzSupport", "CLI", "Compile", "Spec", "Sys"]),
        ("fuzz-options", "FuzzOptions", ["FuzzSupport", "Network", "Rootfs", "Compile", "Spec"]),
        ("fuzz-state", "FuzzState", ["FuzzSupport", "Runtime", "JSON", "Spec"]),
    ]
    for f in fuzz {
        package.targets.append(.executableTarget(name: f.target, dependencies: f.deps, path: "Tests/Fuzz/" + f.target))
        package.products.append(.executable(name: f.product, targets: [f.target]))
    }
}
