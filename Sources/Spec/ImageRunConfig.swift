// What an image's config says about running it (image-spec's config.config,
// the part a container takes): one value for the image store, which decodes
// it, and for compile, which turns it into the spec with the flags on top.

public struct ImageRunConfig: Equatable {
    public var env: [String] = []
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var workingDir: String?
    public var user: String?
    public var stopSignal: String?
    public var labels: [String: String] = [:]
    public init() {}
}
