#!/usr/bin/env python3
"""The nginx configs we ship: the production site passes `nginx -t` (with a
self-signed certificate made here) and sets server_tokens off, TLS 1.2/1.3
only, HSTS with `always` and a per-address connection limit on /api/; the
development stack shows the headers on its answers and on nginx's own 413,
and its nginx workers never run as root: started by root, they run as
nobody, reach the pool's socket through its group, spool a large body to
their temp dir, and cannot read the data dir's files."""
import grp, os, pwd, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, SRCDIR

t = TAP()
NGINX = os.path.join(SRCDIR, "nginx")

tmp = tempfile.mkdtemp(prefix="anyon-t-nginx-")
try:
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=anyon.example.org", "-keyout", os.path.join(tmp, "anyon.key"),
                        "-out", os.path.join(tmp, "anyon.pem")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t.eq(r.returncode, 0, "a self-signed certificate for the test")
    for name in ("anyon-locations.conf", "anyon-headers.conf", "fastcgi_params"):
        shutil.copy(os.path.join(NGINX, name), tmp)
    shutil.copy("/etc/nginx/mime.types", tmp)
    with open(os.path.join(NGINX, "anyon-site.conf")) as f:
        site = f.read()
    site = (site.replace("/etc/ssl/certs/anyon.pem", os.path.join(tmp, "anyon.pem"))
                .replace("/etc/ssl/private/anyon.key", os.path.join(tmp, "anyon.key"))
                .replace("/usr/local/share/anyon/nginx/", tmp + "/"))
    with open(os.path.join(tmp, "site.conf"), "w") as f:
        f.write(site)
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write("pid %(t)s/nginx.pid;\nerror_log %(t)s/error.log;\nevents {}\nhttp {\n"
                "include mime.types;\nclient_body_temp_path %(t)s/body;\nfastcgi_temp_path %(t)s/fcgi;\n"
                "proxy_temp_path %(t)s/proxy;\nuwsgi_temp_path %(t)s/uwsgi;\nscgi_temp_path %(t)s/scgi;\n"
                "access_log off;\ninclude site.conf;\n}\n" % {"t": tmp})
    r = subprocess.run(["nginx", "-T", "-q", "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"),
                        "-e", os.path.join(tmp, "error.log")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    t.eq(r.returncode, 0, "nginx -t accepts the production site config" + ("" if r.returncode == 0 else ": " + r.stdout[-2000:]))
    conf = r.stdout
    t.ok("server_tokens off;" in conf, "server_tokens off")
    t.ok("ssl_protocols TLSv1.2 TLSv1.3;" in conf, "TLS 1.2 and 1.3 only")
    t.ok('add_header Strict-Transport-Security "max-age=31536000" always;' in conf,
         "HSTS with always (in the headers every location includes)")
    t.ok("limit_conn_zone $binary_remote_addr zone=anyon_conn" in conf and conf.count("limit_conn anyon_conn") >= 3,
         "a per-address connection limit on every /api/ location")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

with Stack() as s:
    c = s.client()
    r = c.get("/api/health")
    t.ok(r.header("Strict-Transport-Security") == "max-age=31536000", "HSTS on an API answer", r.headers)
    t.eq(r.header("Server"), "nginx", "the Server header names no version")
    r = c.post("/api/jobs", b"x" * (9 * 1024 * 1024), headers={"Content-Type": "application/json"}, csrf=False)
    t.ok(r.status == 413 and r.header("Strict-Transport-Security") == "max-age=31536000",
         "HSTS on nginx's own 413 too", (r, r.headers))

    # nginx's workers: never root
    workers = s.children(s.pid("nginx"))
    uids = [os.stat("/proc/%d" % p).st_uid for p in workers]
    t.ok(len(workers) == 2 and all(u != 0 for u in uids), "nginx's workers do not run as root", uids)
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        t.ok(all(u == nobody.pw_uid for u in uids), "started by root, they run as nobody", uids)
        st = os.stat(os.path.join(s.data, "run", "fcgi.sock"))
        t.ok(st.st_gid == nobody.pw_gid and st.st_mode & 0o777 == 0o660,
             "the pool's socket is 0660 in nobody's group (ANYON_FCGI_SOCKET_GROUP)",
             (grp.getgrgid(st.st_gid).gr_name, oct(st.st_mode)))
        r = subprocess.run(["runuser", "-u", "nobody", "--", "cat", os.path.join(s.data, "keyring"),
                            s.db if not s.is_pg else os.path.join(s.data, "log", "fcgi.log")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t.ok(r.returncode != 0 and "Permission denied" in r.stderr,
             "nobody cannot read the data dir's files (keyring, database or logs)", r.stderr)
    r = c.get("/")
    t.ok(r.status == 200 and "<html" in r.body.lower(), "the UI's files are served", r)
    r = c.get("/api/health")
    t.ok(r.status == 200 and r.json["status"] == "ok", "the API answers through the socket", r)
    r = c.post("/api/jobs", b"[" + b" " * (2 * 1024 * 1024) + b"]", headers={"Content-Type": "application/json"},
               csrf=False)
    t.ok(r.status == 413 and r.error_code() == "body_too_large",
         "a 2 MiB body, spooled to nginx's temp dir by a worker, reaches anyon (its own JSON 413)", r)
t.done()
