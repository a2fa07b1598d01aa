import CArchive
import CCrypto
import Glibc

// Images: the content-addressed store, archives in and out, layer unpacking (issue 14).

public enum ImageLinkCheck {
    public static func libarchiveVersion() -> String { String(cString: archive_version_string()) }
    public static func sha256Hex(_ b: [UInt8]) -> String {
        var md = [UInt8](repeating: 0, count: 32)
        _ = b.withUnsafeBufferPointer { SHA256($0.baseAddress, $0.count, &md) }
        return md.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
