"""fcgiclient - one FastCGI request straight to the pool's socket, with the
parameters the test chooses (as nginx's fastcgi_params would send them):
for checks that must not depend on what nginx is told, like the peer
address local mode accepts.

    status, headers, body = request("/path/fcgi.sock", "GET", "/api/health",
                                    REMOTE_ADDR="203.0.113.7")
A path with no slash and a colon ("127.0.0.1:9000") is TCP, as libfcgi
reads ANYON_FCGI_SOCKET. Only what the tests need: one request per
connection, role RESPONDER, a body of at most 65535 bytes.
"""
import socket
import struct

VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1


def _record(kind, content, req_id=1):
    return struct.pack(">BBHHBx", VERSION, kind, req_id, len(content), 0) + content


def _length(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def _params(params):
    out = b""
    for k, v in params.items():
        k, v = k.encode(), str(v).encode()
        out += _length(len(k)) + _length(len(v)) + k + v
    return out


def _connect(target, timeout):
    if "/" not in target and ":" in target:
        host, _, port = target.rpartition(":")
        return socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(target)
    return s


def request(target, method, uri, timeout=10, body=b"", **params):
    """Sends one request; returns (status, {lower-case name: value}, body
    text). A parameter given as None is left out; CONTENT_LENGTH follows
    body."""
    if isinstance(body, str):
        body = body.encode()
    path, _, query = uri.partition("?")
    p = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": path, "QUERY_STRING": query,
         "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "127.0.0.1",
         "REMOTE_PORT": "40000", "SERVER_ADDR": "127.0.0.1", "SERVER_PORT": "80",
         "SERVER_NAME": "localhost", "HTTP_HOST": "localhost",
         "CONTENT_LENGTH": str(len(body)) if body else ""}
    p.update(params)
    p = {k: v for k, v in p.items() if v is not None}
    s = _connect(target, timeout)
    try:
        s.sendall(_record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, 0)) +
                  _record(PARAMS, _params(p)) + _record(PARAMS, b"") +
                  (_record(STDIN, body) if body else b"") + _record(STDIN, b""))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    out = b""
    while len(data) >= 8:
        _, kind, _, clen, plen = struct.unpack(">BBHHB", data[:7])
        if kind == STDOUT:
            out += data[8:8 + clen]
        data = data[8 + clen + plen:]
    head, _, body = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        k, _, v = line.partition(":")
        if k:
            headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, body.decode("utf-8", "replace")
