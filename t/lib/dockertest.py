"""Docker for tests: a tiny image made from Debian's busybox-static, and a
raw Engine API client over the unix socket (to check what anyon's C client
did, independently of it).

    import dockertest
    eng = dockertest.Engine()           # fails loudly when Docker is missing
    image = dockertest.busybox_image(eng)  # "anyon-test-busybox:<hash>", built once
    eng.get("/containers/json")         # (status, parsed JSON or bytes)

The image is a rootfs tar of /bin/busybox and its applet links, imported
with POST /images/create?fromSrc=- and tagged by the tar's content hash, so
it is built once and reused. No registry, no network. The API version comes
from /_ping like in anyon; nothing is pinned."""
import hashlib, http.client, io, json, os, socket, tarfile, urllib.parse

BUSYBOX = "/bin/busybox"
REPO = "anyon-test-busybox"
APPLETS = ["sh", "cat", "echo", "sleep", "id", "kill", "stat", "ls", "env", "sed", "true",
           "false", "head", "printf", "wc", "tr", "touch", "mkdir", "rm", "ps", "grep", "seq",
           "yes", "dd"]


class DockerMissing(Exception):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("docker", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def socket_path():
    if os.environ.get("ANYON_DOCKER_SOCKET"):
        return os.environ["ANYON_DOCKER_SOCKET"]
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    return "/var/run/docker.sock"


class Engine:
    def __init__(self, path=None, timeout=60):
        self.path = path or socket_path()
        self.timeout = timeout
        if not os.path.exists(self.path):
            raise DockerMissing("Docker is required: no socket at %s" % self.path)
        status, headers, _ = self.raw("GET", "/_ping")
        self.api = headers.get("api-version", "")
        if status != 200 or not self.api:
            raise DockerMissing("Docker at %s does not answer /_ping (HTTP %s)" % (self.path, status))

    def raw(self, method, path, body=None, headers=None):
        c = _UnixConnection(self.path, self.timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def call(self, method, path, body=None, raw_body=None, headers=None):
        """One call on /v{api}{path}; returns (status, JSON or bytes)."""
        h = dict(headers or {})
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        status, hdrs, out = self.raw(method, "/v%s%s" % (self.api, path), data, h)
        if hdrs.get("content-type", "").startswith("application/json") and out:
            try:
                return status, json.loads(out)
            except ValueError:
                pass
        return status, out

    def get(self, path):
        return self.call("GET", path)

    def inspect(self, cid):
        status, doc = self.get("/containers/%s/json" % cid)
        return doc if status == 200 else None

    def remove(self, cid):
        return self.call("DELETE", "/containers/%s?force=1&v=1" % cid)[0]

    def list_label(self, label):
        f = urllib.parse.quote(json.dumps({"label": [label]}))
        status, doc = self.get("/containers/json?all=1&filters=" + f)
        return doc if status == 200 else []

    def remove_label(self, label):
        for c in self.list_label(label):
            self.remove(c["Id"])


def _rootfs_tar():
    """The image's rootfs as tar bytes, the same bytes for the same busybox."""
    if not os.path.exists(BUSYBOX):
        raise DockerMissing("%s is missing: apt-get install busybox-static (./dev build does)" % BUSYBOX)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add_dir(name, mode=0o755):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, 0
            tar.addfile(ti)
        for d in ("bin", "etc", "run", "work", "proc", "sys", "dev"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        with open(BUSYBOX, "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode, ti.mtime = len(data), 0o755, 0
        tar.addfile(ti, io.BytesIO(data))
        for a in APPLETS:
            ti = tarfile.TarInfo("bin/" + a)
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, "busybox", 0o777, 0
            tar.addfile(ti)
        for name, text in (("etc/passwd", "root:x:0:0:root:/:/bin/sh\nagent:x:1000:1000::/work:/bin/sh\n"),
                           ("etc/group", "root:x:0:\nagent:x:1000:\n")):
            b = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(b), 0o644, 0
            tar.addfile(ti, io.BytesIO(b))
    return buf.getvalue()


def busybox_image(eng=None):
    """The test image's reference, imported once and reused."""
    eng = eng or Engine()
    tar = _rootfs_tar()
    tag = hashlib.sha256(tar).hexdigest()[:16]
    ref = "%s:%s" % (REPO, tag)
    status, _ = eng.get("/images/%s/json" % ref)
    if status == 200:
        return ref
    status, out = eng.call("POST", "/images/create?fromSrc=-&repo=%s&tag=%s" % (REPO, tag), raw_body=tar,
                           headers={"Content-Type": "application/x-tar"})
    text = out.decode(errors="replace") if isinstance(out, bytes) else json.dumps(out)
    # Import answers 200 with JSON lines; an error comes inside as "error".
    if status != 200 or '"error"' in text:
        raise RuntimeError("importing the test image failed: HTTP %s %s" % (status, text[:500]))
    status, _ = eng.get("/images/%s/json" % ref)
    if status != 200:
        raise RuntimeError("the imported test image %s is not there" % ref)
    return ref
