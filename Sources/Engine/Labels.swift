import JSON
import Spec
import Sys

// A run-mode container's config.json as inspect, ps and its filters read
// it, and its labels: the annotations that are not ours (an image's labels
// and --label put them there; every key of ours starts with
// org.minicontainer.).

extension Containers {
    /// The config.json the container was created from, decoded; nil when
    /// it cannot be read (a directory a crashed run left).
    public func spec(_ id: String) -> Spec? {
        let path = dir(id) + "/config.json"
        guard let bytes = try? FS.readBytes(path) else { return nil }
        return try? JSONDecoding.decode(Spec.self, from: bytes, file: path)
    }

    /// The container's labels (see containerLabels).
    public func labels(_ id: String) -> [(key: String, value: String)] {
        containerLabels(spec(id)?.annotations ?? [:])
    }
}

/// The labels among a container's annotations: every key that is not one of
/// ours, sorted by key.
public func containerLabels(_ annotations: [String: String]) -> [(key: String, value: String)] {
    annotations.filter { !$0.key.hasPrefix(Annotation.prefix) }.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
}
