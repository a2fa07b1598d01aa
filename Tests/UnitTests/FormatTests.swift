import JSON
import Sys
import XCTest
@testable import CLI

// The Go-template subset of --format (CLI/Format.swift): fields, json,
// index, if/range, pipes, Go's printing of values, table headers and
// alignment, and podman's error lines.

final class FormatTests: XCTestCase {
    /// A ps-like row with a nested struct, a map and arrays.
    let row: JSONValue = {
        var labels = JSONObject()
        labels["tier"] = .string("web")
        labels["app"] = .string("shop")
        var state = JSONObject()
        state["Status"] = .string("running")
        state["Pid"] = .int(4242)
        state["Running"] = .bool(true)
        var o = JSONObject()
        o["ID"] = .string("0123456789ab")
        o["Names"] = .string("web")
        o["State"] = .object(state)
        o["Labels"] = .object(labels)
        o["Args"] = .array([.string("sleep"), .string("60")])
        o["Empty"] = .array([])
        o["Ratio"] = .double(0.5)
        o["CreatedAt"] = .string("2026-12-02 00:43:30 +0000 UTC")
        return .object(o)
    }()

    func render(_ format: String, _ rows: [JSONValue]? = nil) throws -> String {
        try RowFormat(name: "ps", rowType: "container", headers: ["ID": "CONTAINER ID"]).render(format, rows ?? [row])
    }

    func failure(_ format: String) -> String {
        do {
            _ = try render(format)
            XCTFail("\(format) rendered")
            return ""
        } catch let f as Failure {
            return f.message
        } catch {
            XCTFail("\(error)")
            return ""
        }
    }

    func testFieldsNestedAndLiteralText() throws {
        XCTAssertEqual(try render("{{.Names}} {{.State.Status}}"), "web running\n")
        XCTAssertEqual(try render("pid={{.State.Pid}}\\tid={{.ID}}\\n"), "pid=4242\tid=0123456789ab\n")
        XCTAssertEqual(try render("{{ .Names }}"), "web\n")
        XCTAssertEqual(try render("{{.Names}}", [row, row]), "web\nweb\n")
    }

    func testGoPrinting() throws {
        XCTAssertEqual(try render("{{.Args}}|{{.Empty}}|{{.Labels}}|{{.Ratio}}|{{.State.Running}}"),
                       "[sleep 60]|[]|map[app:shop tier:web]|0.5|true\n")
        // A struct prints its values in order.
        XCTAssertEqual(try render("{{.State}}"), "{running 4242 true}\n")
        // A map's missing key is <no value>; a struct's missing field is an error.
        XCTAssertEqual(try render("{{.Labels.nope}}"), "<no value>\n")
    }

    func testJSONAndIndex() throws {
        XCTAssertEqual(try render("{{json .Labels}}"), "{\"tier\":\"web\",\"app\":\"shop\"}\n")
        XCTAssertEqual(try render("{{json .Args}} {{json .Names}}"), "[\"sleep\",\"60\"] \"web\"\n")
        XCTAssertTrue(try render("{{json .}}").hasPrefix("{\"ID\":\"0123456789ab\",\"Names\":\"web\""))
        XCTAssertEqual(try render("{{index .Labels \"tier\"}}|{{index .Labels \"nope\"}}|{{index .Args 1}}"), "web||60\n")
        XCTAssertEqual(try render("{{.Labels | json}}"), "{\"tier\":\"web\",\"app\":\"shop\"}\n")
        XCTAssertEqual(try render("{{join .Args \",\"}} {{len .Args}} {{upper .Names}}"), "sleep,60 2 WEB\n")
    }

    func testIfRangeWith() throws {
        XCTAssertEqual(try render("{{if .State.Running}}up{{else}}down{{end}}"), "up\n")
        XCTAssertEqual(try render("{{if .Empty}}some{{else if .Labels}}labels{{else}}none{{end}}"), "labels\n")
        XCTAssertEqual(try render("{{if eq .State.Status \"running\"}}yes{{end}}"), "yes\n")
        XCTAssertEqual(try render("{{range .Args}}<{{.}}>{{end}}"), "<sleep><60>\n")
        XCTAssertEqual(try render("{{range .Labels}}{{.}},{{end}}"), "shop,web,\n")
        XCTAssertEqual(try render("{{range .Empty}}x{{else}}none{{end}}"), "none\n")
        XCTAssertEqual(try render("{{with .State}}{{.Pid}}{{end}}"), "4242\n")
        XCTAssertEqual(try render("a {{- \" b \" -}} c"), "a b c\n")
    }

    func testTable() throws {
        var other = JSONObject()
        other["ID"] = .string("ba9876543210")
        other["Names"] = .string("a-much-longer-name")
        other["CreatedAt"] = .string("x")
        let rows = [row, .object(other)]
        // podman's tabwriter: columns at least 12 wide, 2 spaces of padding;
        // the header from the field names (CreatedAt -> CREATED AT).
        XCTAssertEqual(try render("table {{.ID}}\\t{{.Names}}\\t{{.CreatedAt}}", rows),
                       "CONTAINER ID  NAMES               CREATED AT\n"
                       + "0123456789ab  web                 2026-12-02 00:43:30 +0000 UTC\n"
                       + "ba9876543210  a-much-longer-name  x\n")
        // Spaces between fields are column breaks too, as podman's.
        XCTAssertEqual(try render("table {{.ID}} {{.Names}}", rows), try render("table {{.ID}}\\t{{.Names}}", rows))
        XCTAssertEqual(try render("table {{.Names}}", []), "NAMES\n")
    }

    func testErrorsArePodmans() {
        XCTAssertEqual(failure("{{.Bogus}}"),
                       "template: ps:1:2: executing \"ps\" at <.Bogus>: can't evaluate field Bogus in type container")
        XCTAssertEqual(failure("xx {{.State.Bogus}}"),
                       "template: ps:1:5: executing \"ps\" at <.State.Bogus>: can't evaluate field Bogus in type State")
        XCTAssertEqual(failure("{{.Names.Pid}}"),
                       "template: ps:1:2: executing \"ps\" at <.Names.Pid>: can't evaluate field Pid in type string")
        XCTAssertEqual(failure("{{index .Args \"k\"}}"),
                       "template: ps:1:2: executing \"ps\" at <index .Args \"k\">: error calling index: cannot index slice/array with type string")
        XCTAssertEqual(failure("{{nosuch .Names}}"), "template: ps:1: function \"nosuch\" not defined")
        XCTAssertEqual(failure("{{.Names"), "template: ps:1: unclosed action")
        XCTAssertEqual(failure("{{if .Names}}x"), "template: ps:1: unexpected EOF")
        XCTAssertEqual(failure("{{end}}"), "template: ps:1: unexpected {{end}}")
        XCTAssertEqual(failure("{{range .Names}}{{end}}"),
                       "template: ps:1:8: executing \"ps\" at <.Names>: range can't iterate over web")
        // On a second line, the column counts from its start.
        XCTAssertEqual(failure("ok\\n  {{.Bogus}}"),
                       "template: ps:2:4: executing \"ps\" at <.Bogus>: can't evaluate field Bogus in type container")
    }

    func testHeaderNames() {
        XCTAssertEqual(Template.splitCamel("CreatedAt"), "Created At")
        XCTAssertEqual(Template.splitCamel("CPUPerc"), "CPU Perc")
        XCTAssertEqual(Template.splitCamel("ID"), "ID")
        XCTAssertEqual(Template.splitCamel("RunningFor"), "Running For")
    }

    func testDurationsAndSizes() {
        XCTAssertEqual(goDuration(0), "0s")
        XCTAssertEqual(goDuration(56_016_836), "56.016836ms")
        XCTAssertEqual(goDuration(74_918_478_503), "1m14.918478503s")
        XCTAssertEqual(goDuration(3_600_000_000_000), "1h0m0s")
        XCTAssertEqual(goDuration(1500), "1.5µs")
        XCTAssertEqual(statSize(0), "0B")
        XCTAssertEqual(statSize(752), "752B")
        XCTAssertEqual(statSize(233_472), "233.5kB")
        XCTAssertEqual(statSize(25_280_000_000), "25.28GB")
        XCTAssertEqual(statSize(4306), "4.306kB")
        XCTAssertEqual(fixed(0.0812, 2), "0.08")
        XCTAssertEqual(fixed(12.5, 3), "12.500")
    }
}
