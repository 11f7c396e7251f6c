#!/usr/bin/env python3
"""`make install` makes a deployment that works as installed: staged with
DESTDIR under a temporary prefix and unpacked there (as a package would
be), it holds systemd units that pass `systemd-analyze verify` and rate
well in `systemd-analyze security` (offline: PID 1 need not be systemd),
the worker alone in Docker's group (with the pool's credentials the Docker
socket does not open; with the worker's it does), an example env file and an nginx site
generated with that prefix, the socket of the env file and the headers
snippet beside it; `nginx -t` accepts the site (with a certificate made
here by openssl); and the installed binaries, started as the units start
them (their ExecStart= with the env file's settings), serve through that
site over TLS: /api/health, the security headers, the HTTP->HTTPS
redirect, IPv6, and unknown host names refused. The site for a proxy that
ends TLS in front (anyon-behind-proxy.conf) is generated with the same
paths and socket and the proxy's address: `nginx -t` accepts it, and
through it, over plain HTTP, the session cookie is __Host-, Secure and a
write from the https origin passes. The tools it needs
(systemd-analyze, nginx, openssl, curl) are installed when missing and we
are root; otherwise that is a failure, never a skip."""
import json, os, re, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR, free_port, make_install

t = TAP()
NEEDS = {"systemd-analyze": "systemd", "nginx": "nginx-light", "openssl": "openssl", "curl": "curl"}
missing = [pkg for tool, pkg in NEEDS.items() if not shutil.which(tool)]
if missing and os.getuid() == 0:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env,
                   stdout=subprocess.DEVNULL)
    missing = [pkg for tool, pkg in NEEDS.items() if not shutil.which(tool)]
if not t.ok(not missing, "the tools the test needs are here", "missing: %s (apt-get install %s)"
            % (missing, " ".join(missing))):
    t.done()

T = tempfile.mkdtemp(prefix="anyon-t7000-")
os.chmod(T, 0o755)   # nginx's workers (nobody) pass through to the static files
STAGE, PREFIX = os.path.join(T, "stage"), os.path.join(T, "prefix")
RUN, STATE, ETC = os.path.join(T, "run-anyon"), os.path.join(T, "state"), os.path.join(T, "etc-anyon")
HTTP, HTTPS, HOP = free_port(), free_port(), free_port()
NAME = "anyon.test"
SOCK = os.path.join(RUN, "fcgi.sock")
CERT, KEY = os.path.join(T, "tls", "anyon.pem"), os.path.join(T, "tls", "anyon.key")
procs = []


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def read(path):
    with open(path) as f:
        return f.read()


try:
    # ---- make install, staged, then unpacked in place ----
    r = make_install(STAGE, PREFIX, ANYON_SERVER_NAME=NAME, ANYON_FCGI_SOCKET=SOCK, ANYON_TLS_CERT=CERT,
                     ANYON_TLS_KEY=KEY, ANYON_HTTP_PORT=HTTP, ANYON_HTTPS_PORT=HTTPS, NGINX_GROUP="nogroup",
                     ANYON_PROXY_LISTEN="127.0.0.1:%d" % HOP)
    t.ok(r.returncode == 0, "make install DESTDIR=... prefix=...", r.stdout[-3000:])
    shutil.copytree(STAGE + PREFIX, PREFIX, symlinks=True)
    units = os.path.join(PREFIX, "lib", "systemd", "system")
    fcgi_unit, worker_unit = (os.path.join(units, "anyon-%s.service" % n) for n in ("fcgi", "worker"))
    nginx_dir = os.path.join(PREFIX, "share", "anyon", "nginx")
    env_example = os.path.join(PREFIX, "share", "anyon", "dist", "anyon.env")
    proxy_site = os.path.join(nginx_dir, "anyon-behind-proxy.conf")
    wanted = [fcgi_unit, worker_unit, env_example, os.path.join(nginx_dir, "anyon-site.conf"), proxy_site,
              os.path.join(nginx_dir, "anyon-headers.conf"), os.path.join(nginx_dir, "anyon-locations.conf"),
              os.path.join(nginx_dir, "fastcgi_params"), os.path.join(PREFIX, "share", "doc", "anyon", "DEPLOYMENT.md"),
              os.path.join(PREFIX, "bin", "anyon-fcgi"), os.path.join(PREFIX, "bin", "anyon-worker"),
              os.path.join(PREFIX, "bin", "anyonctl")]
    t.ok(all(os.path.isfile(p) for p in wanted), "installed: units, env file, nginx site with its headers "
         "and locations beside it, docs, programs", [p for p in wanted if not os.path.isfile(p)])

    # ---- the units ----
    fu, wu = read(fcgi_unit), read(worker_unit)
    r = run(["systemd-analyze", "verify", fcgi_unit, worker_unit])
    t.ok(r.returncode == 0 and not r.stdout.strip(), "systemd-analyze verify passes both units, silently", r.stdout)
    t.ok("ExecStart=%s/bin/anyon-fcgi\n" % PREFIX in fu and "ExecStart=%s/bin/anyon-worker\n" % PREFIX in wu,
         "ExecStart= names the installed programs of the prefix", (fu, wu))
    for key in ("StateDirectory=anyon", "ConfigurationDirectory=anyon", "EnvironmentFile=/etc/anyon/env",
                "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes", "NoNewPrivileges=yes",
                "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service",
                "UMask=0077"):
        t.ok(key + "\n" in fu and key + "\n" in wu, "both units: " + key)
    t.ok("RuntimeDirectory=anyon\n" in fu and SOCK.startswith(RUN) and "RuntimeDirectory" not in wu,
         "the pool's unit makes the runtime directory at every start (a reboot empties /run); "
         "the worker's does not own it (stopping it would remove the socket)")
    t.ok("\nCapabilityBoundingSet=\n" in fu, "the pool has no capability at all")
    t.ok("docker" not in re.sub(r"(?m)^#.*$", "", fu).lower(),
         "the pool's unit has nothing of Docker (no group, no ordering)", fu)
    t.ok("SupplementaryGroups=docker\n" in wu and re.search(r"^Wants=.*docker\.service", wu, re.M)
         and re.search(r"^After=.*docker\.service", wu, re.M),
         "the worker alone is in Docker's group, and Wants/After docker.service", wu)
    # Each unit's credentials (nobody standing in for the anyon user, which
    # this machine has not), as systemd would give them: the pool's cannot
    # open the Docker socket, the worker's can.
    dsock = "/var/run/docker.sock"
    if os.getuid() == 0 and os.path.exists(dsock) and shutil.which("setpriv"):
        import grp

        def can_open_docker(unit):
            groups = re.search(r"^SupplementaryGroups=(.*)$", unit, re.M).group(1).split()
            gids = ",".join(str(grp.getgrnam(g).gr_gid) for g in groups if g != "nogroup")
            probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                     "try:\n s.connect(%r)\nexcept PermissionError:\n sys.exit(3)\n" % dsock)
            r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--groups=" + (gids or "nogroup"),
                     sys.executable, "-c", probe])
            return r.returncode
        t.eq(can_open_docker(fu), 3, "the pool's credentials cannot open the Docker socket (permission denied)")
        t.eq(can_open_docker(wu), 0, "the worker's credentials can")
    else:
        t.ok(False, "as root, with %s and setpriv: check the units' credentials against Docker" % dsock)
    for unit, limit in ((fcgi_unit, 2.5), (worker_unit, 2.5)):
        r = run(["systemd-analyze", "security", "--offline=yes", unit])
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
        t.ok(m and float(m.group(1)) <= limit, "systemd-analyze security rates %s at most %.1f (got %s)"
             % (os.path.basename(unit), limit, m and m.group(1)), r.stdout[-1500:])

    # ---- the env file and the site agree ----
    envtext = read(env_example)
    site = read(os.path.join(nginx_dir, "anyon-site.conf"))
    t.ok("ANYON_FCGI_SOCKET=%s\n" % SOCK in envtext and site.count("server unix:%s " % SOCK) == 4,
         "the site's upstream is the env file's ANYON_FCGI_SOCKET", (envtext, site))
    t.ok("/usr/local" not in site + read(os.path.join(nginx_dir, "anyon-locations.conf")),
         "nothing of /usr/local in the site under another prefix")
    t.ok("include %s/anyon-headers.conf;" % nginx_dir in read(os.path.join(nginx_dir, "anyon-locations.conf"))
         and "include %s/fastcgi_params;" % nginx_dir in read(os.path.join(nginx_dir, "anyon-locations.conf"))
         and "include %s/anyon-headers.conf;" % nginx_dir in site,
         "the headers snippet and fastcgi_params are included from beside the site, by absolute path")
    t.ok("listen [::]:%d ssl" % HTTPS in site and "listen [::]:%d;" % HTTP in site, "IPv6 listeners")
    t.ok(re.search(r"listen %d ssl( http2)? default_server;" % HTTPS, site) and "ssl_reject_handshake on;" in site,
         "a default_server refuses unknown names")
    proxy = read(proxy_site)
    t.ok(proxy.count("server unix:%s " % SOCK) == 4 and "/usr/local" not in proxy
         and "include %s/anyon-locations.conf;" % nginx_dir in proxy
         and proxy.count("listen 127.0.0.1:%d" % HOP) == 2 and "set_real_ip_from 127.0.0.1;" in proxy
         and "server_name %s;" % NAME in proxy,
         "the site behind a proxy: the env file's socket, the prefix's paths, the proxy's address and "
         "the server name", proxy)
    # The other http2 form, as for nginx >= 1.25.1 (not the nginx here).
    r = make_install(os.path.join(T, "stage-h2"), PREFIX, NGINX_HTTP2="directive")
    h2 = read(os.path.join(T, "stage-h2") + nginx_dir + "/anyon-site.conf") if r.returncode == 0 else ""
    t.ok(len(re.findall(r"^\s*http2 on;$", h2, re.M)) == 2 and " http2" not in re.sub(r"http2 on;|#.*", "", h2),
         "NGINX_HTTP2=directive: `http2 on;` in both TLS servers, no deprecated listen parameter", h2)

    # ---- nginx -t, with a certificate made here ----
    os.makedirs(os.path.dirname(CERT))
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=" + NAME,
             "-addext", "subjectAltName=DNS:" + NAME, "-keyout", KEY, "-out", CERT])
    t.eq(r.returncode, 0, "a self-signed certificate")
    ng = os.path.join(T, "nginx")
    user = "user nobody nogroup;\n" if os.getuid() == 0 else ""

    def nginx_conf(folder, site):
        """nginx's command line for a main configuration in folder (its pid,
        logs and temp paths there) that includes site."""
        os.makedirs(folder, exist_ok=True)
        shutil.copy("/etc/nginx/mime.types", folder)
        with open(os.path.join(folder, "nginx.conf"), "w") as f:
            f.write("%(u)spid %(t)s/nginx.pid;\nerror_log %(t)s/error.log;\nevents {}\nhttp {\n"
                    "include mime.types;\nclient_body_temp_path %(t)s/body;\nfastcgi_temp_path %(t)s/fcgi;\n"
                    "proxy_temp_path %(t)s/proxy;\nuwsgi_temp_path %(t)s/uwsgi;\nscgi_temp_path %(t)s/scgi;\n"
                    "access_log off;\ninclude %(site)s;\n}\n" % {"u": user, "t": folder, "site": site})
        return ["nginx", "-p", folder, "-c", os.path.join(folder, "nginx.conf"), "-e", os.path.join(folder, "error.log")]

    ngx = nginx_conf(ng, os.path.join(nginx_dir, "anyon-site.conf"))
    r = run(ngx + ["-t", "-q"])
    t.ok(r.returncode == 0 and "warn" not in r.stdout, "nginx -t accepts the installed site, without a warning",
         r.stdout)
    ngx_proxy = nginx_conf(os.path.join(T, "nginx-proxy"), proxy_site)
    r = run(ngx_proxy + ["-t", "-q"])
    t.ok(r.returncode == 0 and "warn" not in r.stdout,
         "nginx -t accepts the installed site behind a proxy, without a warning", r.stdout)

    # ---- the programs, started as the units start them ----
    def unit_exec(text):
        return re.search(r"^ExecStart=(.*)$", text, re.M).group(1).split()

    def env_file(text):
        env = {}
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith(("#", ";")):
                k, _, v = line.partition("=")
                env[k] = v
        return env

    settings = env_file(envtext)
    # What an admin fills in; systemd's directories are folders of the test.
    settings.update(ANYON_PUBLIC_URL="https://%s:%d" % (NAME, HTTPS), ANYON_GITHUB_CLIENT_ID="Ov23liAnyonTest00001",
                    ANYON_ALLOWED_GITHUB="octocat", ANYON_DATA_DIR=STATE, ANYON_KEY_FILE=os.path.join(ETC, "keyring"),
                    ANYON_FCGI_CHILDREN="2")
    t.eq(settings.get("ANYON_CLOUD"), "1", "the example env file is for a shared server (cloud mode)")
    base = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
    if os.environ.get("ANYON_TEST_BACKEND") == "pg":
        import pgcluster
        settings["ANYON_DB"] = pgcluster.create_db()
        base.update(pgcluster.env())
    uenv = dict(base, **settings)
    for d, mode in ((RUN, 0o711), (STATE, 0o700), (ETC, 0o750)):   # what systemd makes
        os.makedirs(d)
        os.chmod(d, mode)
    r = run([os.path.join(PREFIX, "bin", "anyonctl"), "init-keys"], env=uenv)
    t.eq(r.returncode, 0, "anyonctl init-keys with the env file's settings")
    logs = {}
    for name, unit in (("fcgi", fu), ("worker", wu)):
        logs[name] = open(os.path.join(T, name + ".log"), "w+")
        procs.append(subprocess.Popen(unit_exec(unit), env=uenv, stdin=subprocess.DEVNULL,
                                      stdout=logs[name], stderr=subprocess.STDOUT))
    for _ in range(200):
        if os.path.exists(SOCK) or procs[0].poll() is not None:
            break
        time.sleep(0.05)
    t.ok(os.path.exists(SOCK), "the pool listens on the socket of the env file",
         read(logs["fcgi"].name))
    r = run(ngx)
    t.eq(r.returncode, 0, "nginx starts with the installed site")

    def curl(url, *extra):
        r = run(["curl", "-sS", "-k", "-D", "-", "-o", "-", "--max-time", "10",
                 "--resolve", "%s:%d:127.0.0.1" % (NAME, HTTPS), "--resolve", "%s:%d:127.0.0.1" % (NAME, HTTP)]
                + list(extra) + [url])
        head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
        status = re.match(r"HTTP/\S+ (\d+)", head)
        return (int(status.group(1)) if status else r.returncode), head.lower(), body

    st, head, body = curl("https://%s:%d/api/health" % (NAME, HTTPS))
    t.ok(st == 200 and '"ok"' in body, "GET /api/health over TLS through the installed site: 200", (st, head, body))
    for h in ("strict-transport-security: max-age=31536000", "content-security-policy: default-src 'self'",
              "x-frame-options: deny", "x-content-type-options: nosniff", "referrer-policy: no-referrer"):
        t.ok(h in head, "security header: " + h, head)
    st, head, _ = curl("http://%s:%d/api/health" % (NAME, HTTP))
    t.ok(st == 301 and "location: https://%s:%d/api/health" % (NAME, HTTPS) in head,
         "plain HTTP redirects to HTTPS (the right port)", head)
    st, head, body = curl("https://%s:%d/api/health" % (NAME, HTTPS), "-H", "Host: evil.example")
    t.ok(st == 421, "a known SNI with another Host: 421", (st, body))
    st, head, body = curl("http://127.0.0.1:%d/api/health" % HTTP)
    t.ok(st == 421 and "misdirected_request" in body, "a bare address over HTTP: 421 from the default server",
         (st, body))
    r = run(["curl", "-sS", "-k", "--max-time", "10", "https://127.0.0.1:%d/api/health" % HTTPS])
    t.ok(r.returncode != 0, "TLS without a known name: the handshake is refused", r.stdout)
    r = run(["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--resolve",
             "%s:%d:[::1]" % (NAME, HTTPS), "https://%s:%d/api/health" % (NAME, HTTPS)])
    t.ok(r.returncode == 0 and r.stdout == "200", "the same over IPv6 ([::1])", r.stdout)

    # The site behind a proxy: plain HTTP on the proxy's hop, told HTTPS.
    r = run(ngx_proxy)
    t.eq(r.returncode, 0, "a second nginx starts with the installed site behind a proxy")
    public = "%s:%d" % (NAME, HTTPS)   # ANYON_PUBLIC_URL's host and port
    st, head, body = curl("http://127.0.0.1:%d/api/session" % HOP, "-H", "Host: " + public)
    m = re.search(r"^set-cookie: __host-anyon_session=([^;\s]+);.*; secure$", head, re.M)
    t.ok(st == 200 and m, "through it over plain HTTP: the session cookie is __Host-anyon_session, Secure",
         (st, head))
    csrf = json.loads(body).get("csrf_token", "") if st == 200 else ""
    st, head, body = curl("http://127.0.0.1:%d/api/auth/logout" % HOP, "-X", "POST", "-H", "Host: " + public,
                          "-H", "Origin: https://" + public, "-H", "X-CSRF-Token: " + csrf,
                          "-H", "Cookie: __Host-anyon_session=" + (m.group(1) if m else ""))
    t.ok(st == 200, "and a write from https://%s with the token passes" % public, (st, head, body))
    t.ok(procs[1].poll() is None and "started with" in read(logs["worker"].name),
         "the worker runs, started as its unit starts it", read(logs["worker"].name))
finally:
    for pidfile in (os.path.join(T, "nginx", "nginx.pid"), os.path.join(T, "nginx-proxy", "nginx.pid")):
        if os.path.exists(pidfile):
            try:
                os.kill(int(read(pidfile).strip()), signal.SIGQUIT)
            except (OSError, ValueError):
                pass
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for _ in range(100):
        if not any(os.path.exists(os.path.join(T, d, "nginx.pid")) for d in ("nginx", "nginx-proxy")):
            break
        time.sleep(0.05)
    if os.environ.get("ANYON_TEST_KEEP") != "1":
        shutil.rmtree(T, ignore_errors=True)
t.done()
