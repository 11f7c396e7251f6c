#!/usr/bin/env python3
"""anyonctl doctor tells the truth and exits non-zero on any failure: it
makes a real FastCGI request (GET /api/health) through the pool's socket,
so a killed pool whose socket file is left behind is a failure; it opens
every stored secret with the keyring the programs would use, so a keyring
that is not the one that sealed them (or one others may read) is a
failure; and a schema newer than the program is named as such, not
"run migrate".

doctor --nginx FILE runs the real nginx -t on nginx's main configuration:
the site `make install` generates for this deployment passes (syntax, the
anyon_fcgi upstream on ANYON_FCGI_SOCKET, a server_name for the host of
ANYON_PUBLIC_URL); a site whose upstream is another socket fails naming
both; a syntax error fails with nginx's own message; a server_name that
misses the public host fails; no nginx on PATH fails saying so; comments
and quoted strings of a hand-written configuration are not read as
settings."""
import os, re, shutil, signal, sqlite3, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR, BACKEND, new_db, free_port, make_install

t = TAP()
CTL = os.path.join(BUILDDIR, "anyonctl")
T = tempfile.mkdtemp(prefix="anyon-t7040-")
os.makedirs(os.path.join(T, "run"))
env = {k: v for k, v in os.environ.items() if not k.startswith("ANYON_") or k.startswith("ANYON_TEST")}
if BACKEND == "pg":
    import pgcluster
    env.update(pgcluster.env())
env.update(ANYON_DATA_DIR=T, ANYON_DB=new_db(T), ANYON_KEY_FILE=os.path.join(T, "keyring"),
           ANYON_FCGI_SOCKET=os.path.join(T, "run", "fcgi.sock"), ANYON_FCGI_CHILDREN="2", ANYON_HEARTBEAT_S="1")
SOCK = env["ANYON_FCGI_SOCKET"]


def ctl(*args, e=None, stdin=None):
    return subprocess.run([CTL] + list(args), env=e or env, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def doctor(*args, e=None):
    r = ctl("doctor", *args, e=e)
    lines = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^(ok|FAIL|note)\s+(\S+)\s+(.*)$", line)
        if m:
            lines.setdefault(m.group(2), (m.group(1), m.group(3)))
    return r, lines


def consistent(r, lines):
    """The exit code follows the lines: 1 when any line is FAIL."""
    failed = any(v[0] == "FAIL" for v in lines.values())
    return r.returncode == (1 if failed else 0)


t.eq(ctl("init-keys").returncode, 0, "a keyring")
t.eq(ctl("migrate").returncode, 0, "a schema")
r = ctl("secret", "put", "anthropic_api_key", stdin="sk-ant-api03-t7040-0123456789abcdef")
t.eq(r.returncode, 0, "a secret")
procs = []
for prog in ("anyon-fcgi", "anyon-worker"):
    procs.append(subprocess.Popen([os.path.join(BUILDDIR, prog)], env=env, stdin=subprocess.DEVNULL,
                                  stdout=open(os.path.join(T, prog + ".log"), "w"), stderr=subprocess.STDOUT,
                                  start_new_session=True))
try:
    for _ in range(200):
        if os.path.exists(SOCK):
            break
        time.sleep(0.05)
    time.sleep(1.5)   # a worker heartbeat

    r, lines = doctor()
    t.ok(lines.get("fastcgi", ("",))[0] == "ok" and "GET /api/health: 200" in lines["fastcgi"][1],
         "a live pool: ok fastcgi, by a real request through the socket", r.stdout)
    t.ok(lines.get("keyring", ("",))[0] == "ok" and lines.get("secrets", ("",))[0] == "ok"
         and "all 1 decrypt" in lines["secrets"][1], "ok keyring, and every stored secret decrypts", r.stdout)
    t.ok(consistent(r, lines), "the exit code follows the lines (%d)" % r.returncode, r.stdout)

    # ---- doctor --nginx: the site make install generates for this deployment ----
    NAME = "anyon-t7040.test"
    public = dict(env, ANYON_PUBLIC_URL="https://" + NAME)
    tools = [x for x in ("nginx", "openssl") if not shutil.which(x)]
    t.ok(not tools, "nginx and openssl are here", "missing: %s (apt-get install nginx-light openssl)" % tools)
    prefix, ng = os.path.join(T, "prefix"), os.path.join(T, "nginx")
    cert, key = os.path.join(ng, "anyon.pem"), os.path.join(ng, "anyon.key")
    r = make_install(os.path.join(T, "stage"), prefix, ANYON_SERVER_NAME=NAME, ANYON_FCGI_SOCKET=SOCK,
                     ANYON_TLS_CERT=cert, ANYON_TLS_KEY=key, ANYON_HTTP_PORT=free_port(),
                     ANYON_HTTPS_PORT=free_port(), NGINX_GROUP="nogroup")
    t.eq(r.returncode, 0, "make install DESTDIR=... with this deployment's socket and name")
    shutil.copytree(os.path.join(T, "stage") + prefix, prefix, symlinks=True)
    os.makedirs(ng)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=" + NAME, "-keyout", key, "-out", cert], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with open(os.path.join(prefix, "share", "anyon", "nginx", "anyon-site.conf")) as f:
        site = f.read()

    def main_conf(name, site_text=None, http_body=None):
        """nginx's main configuration (its pid, logs and temp paths in the
        test's folder) including site_text as a site, or with http_body."""
        if site_text is not None:
            with open(os.path.join(ng, name + "-site.conf"), "w") as f:
                f.write(site_text)
            http_body = "include %s;\n" % os.path.join(ng, name + "-site.conf")
        path = os.path.join(ng, name + ".conf")
        with open(path, "w") as f:
            f.write("%(u)spid %(t)s/nginx.pid;\nerror_log %(t)s/error.log;\nevents {}\nhttp {\n"
                    "include /etc/nginx/mime.types;\nclient_body_temp_path %(t)s/body;\n"
                    "fastcgi_temp_path %(t)s/fcgi;\nproxy_temp_path %(t)s/proxy;\nuwsgi_temp_path %(t)s/uwsgi;\n"
                    "scgi_temp_path %(t)s/scgi;\naccess_log off;\n%(body)s}\n"
                    % {"u": "user nobody nogroup;\n" if os.getuid() == 0 else "", "t": ng, "body": http_body})
        return path

    good = main_conf("good", site)
    r, lines = doctor("--nginx", good, e=public)
    t.ok(lines.get("nginx", ("",))[0] == "ok" and lines.get("upstream", ("",))[0] == "ok"
         and "unix:" + SOCK in lines["upstream"][1] and lines.get("server_name", ("",))[0] == "ok"
         and NAME in lines["server_name"][1],
         "the generated site: ok nginx (nginx -t), ok upstream (ANYON_FCGI_SOCKET), ok server_name", r.stdout)
    t.eq(r.returncode, 0, "and with everything else healthy, doctor --nginx exits 0")
    t.ok("tls_at_proxy" not in lines, "the site declares no TLS ended at a proxy: no tls_at_proxy line", r.stdout)

    # The site for a proxy that ends TLS in front, as installed, and with
    # its declaration put before the include that undoes it.
    with open(os.path.join(prefix, "share", "anyon", "nginx", "anyon-behind-proxy.conf")) as f:
        proxy = f.read()
    r, lines = doctor("--nginx", main_conf("proxy", proxy), e=public)
    t.ok(lines.get("nginx", ("",))[0] == "ok" and lines.get("upstream", ("",))[0] == "ok"
         and lines.get("server_name", ("",))[0] == "ok" and lines.get("tls_at_proxy", ("",))[0] == "note"
         and "1 server declares" in lines["tls_at_proxy"][1] and r.returncode == 0,
         "the installed site behind a proxy: ok nginx, upstream, server_name; a note that one server "
         "declares TLS ended at the proxy; exit 0", r.stdout)
    decl = "\tset $anyon_https on;\n\tset $anyon_server_port 443;\n"
    inc = "\tinclude %s/share/anyon/nginx/anyon-locations.conf;\n" % prefix
    t.ok(decl in proxy and inc in proxy, "(the declaration and the include as expected)", proxy)
    early = proxy.replace(decl, "").replace(inc, decl + inc)
    r, lines = doctor("--nginx", main_conf("early", early), e=public)
    t.ok(lines.get("nginx", ("",))[0] == "ok" and lines.get("tls_at_proxy", ("",))[0] == "FAIL"
         and "before including anyon-locations.conf" in lines["tls_at_proxy"][1] and r.returncode == 1,
         "the declaration before the include (which sets both again): FAIL tls_at_proxy, exit 1", r.stdout)

    other_sock = os.path.join(T, "run", "other.sock")
    r, lines = doctor("--nginx", main_conf("other", site.replace("unix:" + SOCK, "unix:" + other_sock)), e=public)
    t.ok(lines.get("nginx", ("",))[0] == "ok" and lines.get("upstream", ("",))[0] == "FAIL"
         and "unix:" + other_sock in lines["upstream"][1] and SOCK in lines["upstream"][1].replace(other_sock, ""),
         "an upstream on another socket: FAIL upstream, naming both paths", r.stdout)
    t.eq(r.returncode, 1, "and doctor exits 1")

    bad = main_conf("bad", site.replace("server_tokens off;", "server_tokens off;\nanyon_no_such_directive on;"))
    nginx_says = subprocess.run(["nginx", "-t", "-q", "-c", bad], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True).stdout
    r, lines = doctor("--nginx", bad, e=public)
    msg = lines.get("nginx", ("", ""))[1].split(": ", 1)[-1]
    t.ok(lines.get("nginx", ("",))[0] == "FAIL" and 'unknown directive "anyon_no_such_directive"' in msg
         and msg in nginx_says and "upstream" not in lines,
         "a syntax error: FAIL nginx with nginx's own message, nothing read of the file", (r.stdout, nginx_says))
    t.eq(r.returncode, 1, "and doctor exits 1")

    r, lines = doctor("--nginx", good, e=dict(env, ANYON_PUBLIC_URL="https://elsewhere.test"))
    t.ok(lines.get("server_name", ("",))[0] == "FAIL" and "elsewhere.test" in lines["server_name"][1]
         and r.returncode == 1, "ANYON_PUBLIC_URL's host missing from server_name: FAIL server_name, exit 1",
         r.stdout)

    empty = os.path.join(T, "no-nginx-here")
    os.makedirs(empty)
    r, lines = doctor("--nginx", good, e=dict(public, PATH=empty))
    t.ok(lines.get("nginx", ("",))[0] == "FAIL" and "on PATH=" + empty in lines["nginx"][1] and r.returncode == 1,
         "no nginx on PATH: FAIL nginx saying so, exit 1", r.stdout)
    t.eq(ctl("doctor", "--nginx", e=public).returncode, 2, "doctor --nginx without a file: usage, exit 2")
    t.ok(lines.get("fastcgi", ("",))[0] == "ok", "(the pool still answers)", r.stdout)

    # A hand-written configuration: what comments and quoted strings say
    # is no setting; a wildcard name covers the host.
    hand = main_conf("hand", http_body=(
        "# upstream anyon_fcgi { server unix:/wrong.sock; }\n"
        "upstream anyon_fcgi {\n  server unix:%s; # server unix:/wrong.sock;\n}\n"
        "server {\n  listen 127.0.0.1:%d;\n  server_name \"*.t7040.test\" localhost;\n"
        "  set $x \"{\";\n  location / { return 200 '${x} server unix:/wrong.sock; } {';\n  }\n"
        "  set $anyon_https $https; set $anyon_server_port $server_port;\n"
        "  location /api/ { include %s/share/anyon/nginx/fastcgi_params; fastcgi_pass anyon_fcgi; }\n}\n"
        % (SOCK, free_port(), prefix)))
    r, lines = doctor("--nginx", hand, e=dict(env, ANYON_PUBLIC_URL="https://a.t7040.test"))
    t.ok(lines.get("nginx", ("",))[0] == "ok" and lines.get("upstream", ("",))[0] == "ok"
         and "1 entry" in lines["upstream"][1] and lines.get("server_name", ("",))[0] == "ok" and r.returncode == 0,
         "a hand-written configuration: comments and strings ignored, *.t7040.test covers a.t7040.test", r.stdout)

    # ---- a killed pool leaves its socket file behind ----
    os.killpg(procs[0].pid, signal.SIGKILL)
    procs[0].wait()
    t.ok(os.path.exists(SOCK), "the killed pool's socket file is still there")
    r, lines = doctor()
    t.ok(lines.get("fastcgi", ("",))[0] == "FAIL" and "cannot connect" in lines["fastcgi"][1],
         "a killed pool: FAIL fastcgi, saying the socket does not answer", r.stdout)
    t.eq(r.returncode, 1, "and doctor exits 1")

    # ---- the wrong keyring ----
    other = dict(env, ANYON_KEY_FILE=os.path.join(T, "keyring-other"))
    t.eq(ctl("init-keys", e=dict(other, ANYON_DB=os.path.join(T, "nothing-here.db"))).returncode, 0,
         "another keyring")
    r, lines = doctor(e=other)
    t.ok(lines.get("secrets", ("",))[0] == "FAIL" and "1 of 1 do NOT decrypt" in lines["secrets"][1],
         "a keyring that did not seal the secrets: FAIL secrets", r.stdout)
    os.chmod(env["ANYON_KEY_FILE"], 0o644)
    r, lines = doctor()
    t.ok(lines.get("keyring", ("",))[0] == "FAIL" and "group or others" in lines["keyring"][1]
         and r.returncode == 1, "a keyring others may read: FAIL keyring, exit 1", r.stdout)
    os.chmod(env["ANYON_KEY_FILE"], 0o600)

    # ---- a schema newer than this anyonctl ----
    sql = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future', 0)"
    if BACKEND == "pg":
        pgcluster.shared().psql(env["ANYON_DB"], sql)
    else:
        with sqlite3.connect(env["ANYON_DB"]) as c:
            c.execute(sql)
    r, lines = doctor()
    t.ok(lines.get("schema", ("",))[0] == "FAIL" and "newer than this anyonctl" in lines["schema"][1]
         and "anyonctl migrate" not in lines["schema"][1], "a newer schema is named, without advising migrate",
         r.stdout)
    t.eq(r.returncode, 1, "and doctor exits 1")
finally:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
shutil.rmtree(T, ignore_errors=True)
t.done()
