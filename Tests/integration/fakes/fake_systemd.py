"""A fake systemd on a unix socket (systemd's private one, in a mount
namespace of the test's own): it answers the D-Bus EXTERNAL
authentication, parses each message with jeepney (an implementation of the
D-Bus wire format that is not ours), records the method calls as JSON
lines in RECORD, and answers StartTransientUnit with a job path, or with
an error when the unit name contains "refuse".

usage: fake_systemd.py SOCKET RECORD   (prints "ready" once listening)
"""
import json
import os
import socket
import sys

from jeepney import Parser, new_error, new_method_return


def plain(v):
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, bytes):
        return v.decode()
    return v


def serve(conn, record):
    buf = b""
    while b"BEGIN\r\n" not in buf:
        data = conn.recv(4096)
        if not data:
            return
        buf += data
        if buf.startswith(b"\0AUTH EXTERNAL ") and b"\r\n" in buf and b"OK" not in buf:
            line = buf[1:buf.index(b"\r\n")].decode()
            with open(record, "a") as f:
                f.write(json.dumps({"auth": line}) + "\n")
            conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
            buf += b"OK"  # answered once
    parser = Parser()
    serial = 0
    parser.add_data(buf[buf.index(b"BEGIN\r\n") + 7:])
    while True:
        for msg in iter(parser.get_next_message, None):
            h = msg.header
            call = {"member": h.fields.get(3), "path": h.fields.get(1), "interface": h.fields.get(2),
                    "destination": h.fields.get(6), "signature": h.fields.get(8), "body": plain(msg.body)}
            with open(record, "a") as f:
                f.write(json.dumps(call) + "\n")
            if h.fields.get(3) == "StartTransientUnit" and "refuse" not in msg.body[0]:
                reply = new_method_return(msg, "o", ("/org/freedesktop/systemd1/job/42",))
            else:
                reply = new_error(msg, "org.freedesktop.systemd1.UnitExists", "s", ("Unit %s already exists." % msg.body[0],))
            serial += 1
            conn.sendall(reply.serialise(serial=serial))
        data = conn.recv(4096)
        if not data:
            return
        parser.add_data(data)


def main():
    path, record = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    print("ready", flush=True)
    while True:
        conn, _ = s.accept()
        with conn:
            serve(conn, record)


if __name__ == "__main__":
    main()
