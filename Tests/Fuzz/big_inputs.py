#!/usr/bin/env python3
"""Large inputs for the fuzz targets (Tests/Fuzz/README.md).

libFuzzer's inputs stay small (-max_len), so a cost quadratic in the input's
size never shows as a timeout there. These inputs are large (100 KB to
5 MB, as a config.json, a state.json or an argv can be): each target runs
each of its inputs once, and every one must finish within the timeout
(5 s, as in `make fuzz`). Run after Tests/Fuzz/fuzz.sh has built the
targets:   python3 Tests/Fuzz/big_inputs.py [TIMEOUT]
Exits 1 when an input timed out or crashed; prints each input's time.
"""
import json, os, subprocess, sys, tempfile, time

N = 100_000
BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '.build', 'fuzz', 'release')
TIMEOUT = int(sys.argv[1]) if len(sys.argv) > 1 else 5

def config(**extra):
    d = {"ociVersion": "1.2.0", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["a"]}}
    for k, v in extra.items():
        if k == "process":
            d["process"].update(v)
        else:
            d[k] = v
    return json.dumps(d).encode()

def state(**extra):
    d = {"id": "c1", "pid": 1, "startTime": 1, "bundle": "/b", "rootfs": "/r", "created": "x", "owner": "", "cgroups": {}}
    d.update(extra)
    return json.dumps(d).encode()

def argv(*args):
    return b'\0'.join(a.encode() for a in args)

def repeat(flag, fmt, n=20_000):
    out = []
    for i in range(n):
        out += [flag, fmt.replace('%d', str(i % 65535 + 1))]
    return out

CASES = {
    'config': {
        'annotations': config(annotations={"k%d" % i: "v" for i in range(N)}),
        'sysctl': config(linux={"sysctl": {"net.x%d" % i: "1" for i in range(N)}}),
        'namespaces': config(linux={"namespaces": [{"type": "x%d" % i} for i in range(N)]}),
        'namespaces-known': config(linux={"namespaces": [{"type": "pid"} for i in range(N)]}),
        'rlimits': config(process={"rlimits": [{"type": "RLIMIT_X%d" % i, "hard": 1, "soft": 1} for i in range(N)]}),
        'env': config(process={"env": ["K%d=v" % i for i in range(N)]}),
        'gids': config(process={"user": {"uid": 0, "gid": 0, "additionalGids": list(range(2 * N))}}),
        'mounts': config(mounts=[{"destination": "/m%d" % i, "options": ["ro", "x=%d" % i]} for i in range(N // 2)]),
        'keys': config(**{"k%d" % i: i for i in range(N)}),
        'long-string': config(hostname="h" * 4_000_000),
        'deep-arrays': b'[' * N + b']' * N,
        'big-integers': config(process={"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615,
                                                      "soft": 18446744073709551615}] * (N // 4)}),
    },
    'state': {
        'annotations': state(annotations={"k%d" % i: "v" for i in range(N)}),
        'cgroups': state(cgroups={"c%d" % i: "/x" for i in range(N)}),
        'namespaces': state(namespaces={"n%d" % i: "/x" for i in range(N)}),
        'devices': state(resources={"devices": [{"allow": True, "access": "rwm"} for _ in range(N)]}),
    },
    'args': {
        'env': argv('spec', '--rootfs', '/fuzz/rootfs', *repeat('-e', 'K%d=v'), 'sh'),
        'ports': argv('spec', '--rootfs', '/fuzz/rootfs', *repeat('-p', '%d:80'), 'sh'),
        'volumes': argv('spec', '--rootfs', '/fuzz/rootfs', *repeat('-v', '/h%d:/c%d'), 'sh'),
        'positionals': argv('spec', '--rootfs', '/fuzz/rootfs', *(['x'] * N)),
        'clusters': argv('exec', *(['-' + 't' * 30] * 20_000), 'c'),
        'update': argv('update', *repeat('--memory', '%dm'), 'c'),
    },
    'options': {
        'options': ','.join(['ro', 'nosuid', 'mode=755', 'rro', 'tmpcopyup'] * (N // 5)).encode(),
        'size-digits': b'9' * N + b'k',
        'cpus-digits': b'0.' + b'0' * N + b'1',
        'volume': b'/' + b'a/' * N + b':/' + b'b/' * N + b':ro',
        'port': b'1.2.3.4:' + b'1' * N + b':80',
    },
}

def main():
    failed = []
    env = dict(os.environ, SWIFT_BACKTRACE='enable=no')
    with tempfile.TemporaryDirectory(prefix='mc-fuzz-big.') as tmp:
        for target, cases in CASES.items():
            exe = os.path.join(BIN, 'fuzz-' + target)
            if not os.path.exists(exe):
                print('%s: not built (run Tests/Fuzz/fuzz.sh first)' % exe)
                return 1
            for name, data in cases.items():
                path = os.path.join(tmp, '%s-%s' % (target, name))
                with open(path, 'wb') as f:
                    f.write(data)
                t = time.time()
                r = subprocess.run([exe, '-timeout=%d' % TIMEOUT, '-rss_limit_mb=2048', path], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                dt = time.time() - t
                ok = r.returncode == 0
                why = '' if ok else ' FAILED: ' + next((l for l in r.stderr.decode(errors='replace').splitlines()
                                                        if 'ERROR: libFuzzer' in l or 'Fatal error' in l), 'exit %d' % r.returncode)
                print('%-8s %-18s %8d bytes %6.2f s%s' % (target, name, len(data), dt, why))
                if not ok:
                    failed.append(target + '/' + name)
    if failed:
        print('failed: ' + ' '.join(failed))
        return 1
    return 0

if __name__ == '__main__':
    sys.exit(main())
