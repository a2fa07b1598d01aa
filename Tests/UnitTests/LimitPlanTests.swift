import XCTest
@testable import Cgroups
@testable import Spec

/// linux.resources -> control files, for v1 and v2, with runc's conversions.
final class LimitPlanTests: XCTestCase {
    func resources() -> Resources {
        var r = Resources()
        r.memory = Memory(limit: 256 << 20, reservation: 128 << 20, swap: 512 << 20)
        r.cpu = CPU(shares: 1024, quota: 50_000, period: 100_000, cpus: "0-1", mems: "0")
        r.pids = Pids(limit: 50)
        return r
    }

    func testV1() {
        let w = LimitPlan.v1(resources()).map { $0.description }
        XCTAssertEqual(w, [
            "memory:memory.limit_in_bytes=268435456", "memory:memory.memsw.limit_in_bytes=536870912",
            "memory:memory.soft_limit_in_bytes=134217728", "cpu:cpu.shares=1024", "cpu:cpu.cfs_period_us=100000",
            "cpu:cpu.cfs_quota_us=50000", "cpuset:cpuset.cpus=0-1", "cpuset:cpuset.mems=0", "pids:pids.max=50",
        ])
    }

    func testV2() {
        let w = LimitPlan.v2(resources()).map { $0.description }
        XCTAssertEqual(w, [
            "memory.low=134217728", "memory.max=268435456", "memory.swap.max=268435456", "cpu.weight=39",
            "cpu.max=50000 100000", "cpuset.cpus=0-1", "cpuset.mems=0", "pids.max=50",
        ])
        XCTAssertEqual(LimitPlan.controllers(of: LimitPlan.v2(resources())), ["memory", "cpu", "cpuset", "pids"])
    }

    func testConversionsAndUnlimited() {
        XCTAssertEqual(LimitPlan.weight(fromShares: 2), 1)
        XCTAssertEqual(LimitPlan.weight(fromShares: 262_144), 10_000)
        XCTAssertEqual(LimitPlan.weight(fromShares: 1024), 39)
        XCTAssertEqual(LimitPlan.ioWeight(fromBlkio: 10), 1)
        XCTAssertEqual(LimitPlan.ioWeight(fromBlkio: 1000), 10_000)
        var r = Resources()
        r.memory = Memory(limit: -1, swap: -1)
        r.cpu = CPU(quota: -1)
        r.pids = Pids(limit: -1)
        XCTAssertEqual(LimitPlan.v2(r).map { $0.description },
                       ["memory.max=max", "memory.swap.max=max", "cpu.max=max 100000", "pids.max=max"])
        XCTAssertEqual(LimitPlan.v1(r).map { $0.description },
                       ["memory:memory.limit_in_bytes=-1", "memory:memory.memsw.limit_in_bytes=-1",
                        "cpu:cpu.cfs_quota_us=-1", "pids:pids.max=max"])
    }

    func testUnifiedComesLastAndThrottlesMergePerDevice() {
        var r = Resources()
        r.unified = ["memory.high": "1000000", "io.weight": "default 100"]
        var b = BlockIO()
        b.throttleReadBpsDevice = [ThrottleDevice(major: 8, minor: 0, rate: 1000)]
        b.throttleWriteIOPSDevice = [ThrottleDevice(major: 8, minor: 0, rate: 10)]
        r.blockIO = b
        XCTAssertEqual(LimitPlan.v2(r).map { $0.description },
                       ["io.max=8:0 rbps=1000 wiops=10", "io.weight=default 100", "memory.high=1000000"])
    }
}
