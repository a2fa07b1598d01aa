import CCurl
import Glibc
import Sys

// libcurl, set up once per process. The registry client runs only in a
// pull (its own process, or `pull` itself): libcurl's resolver starts
// threads, and nothing on a container's start path may.

enum Curl {
    private static var ready = false

    /// curl_global_init, once.
    static func setUp() throws {
        if ready { return }
        let r = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        guard r == CURLE_OK else { throw Failure(.failed, "libcurl: \(String(cString: curl_easy_strerror(r)))") }
        ready = true
    }
}
