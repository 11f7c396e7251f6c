#!/usr/bin/env bash
# ./dev up and ./dev down: up twice is harmless, down stops exactly what up
# started (and nothing else), up works again; anyonctl doctor and migrate
# against a running and a stopped deployment. An up that fails half-way
# (port taken, a program that dies at start) exits non-zero naming what
# failed and leaves nothing running; status and down find the stack up
# started without ANYON_DATA_DIR, and an explicit one still wins.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"

SRC=${ANYON_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${ANYON_BUILDDIR:-$SRC/build}
export ANYON_BUILD_DIR=$BUILD
ANYON_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/anyon-t1600-XXXXXX") || exit 1
export ANYON_DATA_DIR
ANYON_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || exit 1
export ANYON_PORT
export ANYON_HEARTBEAT_S=1 ANYON_WORKER_POLL_MS=50 ANYON_FCGI_CHILDREN=2
export ASAN_OPTIONS="log_path=$ANYON_DATA_DIR/log/asan:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$ANYON_DATA_DIR/log/ubsan:print_stacktrace=1"
DATA=$ANYON_DATA_DIR
# ./dev records the stack it started here, not in the checkout.
export ANYON_DEV_STATE=$DATA/dev-state
RUN=$DATA/run
OUT=$DATA/out
URL=http://127.0.0.1:$ANYON_PORT/

test_count=0
test_failed=0
test_expect_success () { # NAME BODY: BODY runs in this shell, its output kept for the report
	test_count=$((test_count + 1))
	if eval "$2" >"$OUT.step" 2>&1; then
		echo "ok $test_count - $1"
	else
		echo "not ok $test_count - $1"
		sed -e 's/^/#   /' "$OUT.step"
		test_failed=$((test_failed + 1))
	fi
}
test_skip () { # NAME PREREQUISITE
	test_count=$((test_count + 1))
	echo "ok $test_count - $1 # SKIP missing $2"
}

# Running, not a zombie waiting for its reaper.
alive () {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}
pids () { cat "$RUN/fcgi.pid" "$RUN/worker.pid" "$RUN/nginx.pid" 2>/dev/null; }
# The nginx master of ours and its workers, and anything else naming our data dir.
our_nginx () { [ -f "$RUN/nginx.pid" ] && cat "$RUN/nginx.pid" && pgrep -P "$(cat "$RUN/nginx.pid")"; }
strays () { pgrep -f "$DATA/" | grep -vx "$$" || true; }
# True when no pid of list $2 is in list $1.
disjoint () { local p; for p in $2; do case " $(echo $1) " in *" $p "*) return 1;; esac; done; }
all_alive () { local p; for p in "$@"; do alive "$p" || return 1; done; }
none_alive () { local p; for p in "$@"; do ! alive "$p" || return 1; done; }
health () { curl -sS -o "$OUT.health" -w '%{http_code}' --max-time 5 "${URL}api/health" >"$OUT.code" &&
	    [ "$(cat "$OUT.code")" = 200 ]; }
wait_for () { # SECONDS COMMAND...
	local end=$((SECONDS + $1)); shift
	until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}

# hold_port listen|bind: a process holding a free loopback port, listening
# or only bound (then connecting fails but nginx cannot bind it either).
# Sets HOLD_PID and HOLD_PORT.
hold_port () {
	python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
if sys.argv[1] == "listen":
    s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(300)' "$1" >"$OUT.hold.$1" &
	HOLD_PID=$!
	holders="$holders $HOLD_PID"
	wait_for 10 test -s "$OUT.hold.$1" && HOLD_PORT=$(cat "$OUT.hold.$1")
}
# Nothing of data dir $1 runs: no process names it, no pid file or socket left.
nothing_runs_in () {
	[ -z "$(pgrep -f "$1/" | grep -vx "$$")" ] &&
	! test -e "$1/run/fcgi.pid" && ! test -e "$1/run/worker.pid" && ! test -e "$1/run/nginx.pid" &&
	! test -e "$1/run/fcgi.sock"
}

sentinel=
holders=
cleanup () {
	"$SRC/dev" down >/dev/null 2>&1
	for d in "$DATA"/fail-* "$DATA"/custom; do
		[ -d "$d" ] && ANYON_DATA_DIR=$d "$SRC/dev" down >/dev/null 2>&1
	done
	[ -n "$holders" ] && kill $holders 2>/dev/null
	[ -n "$sentinel" ] && kill "$sentinel" 2>/dev/null
	[ -f "$DECOY/nginx.pid" ] && kill "$(cat "$DECOY/nginx.pid")" 2>/dev/null
	if [ $test_failed = 0 ]; then rm -rf "$DATA" "$DECOY"; else echo "# data kept in $DATA and $DECOY"; fi
}
trap cleanup EXIT

mkdir -p "$DATA/log" || exit 1
sleep 600 &
sentinel=$!
# Other nginx masters on this machine (the system's, other checkouts', other
# tests'): ours must be none of them. Others may come and go while this runs
# (make -j2), so that down leaves nginx alone is shown with a decoy of ours.
other_nginx=$(pgrep -f '^nginx: master' | tr '\n' ' ')
DECOY=$(mktemp -d "${TMPDIR:-/tmp}/anyon-t1600-decoy-XXXXXX") || exit 1
decoy_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n access_log off;\n server { listen 127.0.0.1:%s; return 204; }\n}\n' \
	"$DECOY" "$DECOY" "$decoy_port" >"$DECOY/nginx.conf"
nginx -q -p "$DECOY" -c "$DECOY/nginx.conf" -e "$DECOY/error.log" || { echo "Bail out! the decoy nginx did not start"; exit 1; }
wait_for 10 test -s "$DECOY/nginx.pid"
decoy=$(cat "$DECOY/nginx.pid")
decoy_ok () { alive "$decoy" &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$decoy_port/")" = 204 ]; }

test_expect_success 'dev up starts nginx, the pool and the worker and prints the URL' '
	"$SRC/dev" up --no-build >"$OUT.up1" 2>&1 &&
	grep -Fx "$URL" "$OUT.up1" &&
	first=$(pids) &&
	[ $(echo $first | wc -w) = 3 ] &&
	all_alive $first &&
	test -S "$RUN/fcgi.sock" &&
	ours=$(our_nginx) &&
	[ $(echo $ours | wc -w) -ge 2 ] &&
	disjoint "$other_nginx" "$ours" &&
	wait_for 10 health
'

test_expect_success 'dev up again is harmless: already running, same pids' '
	"$SRC/dev" up --no-build >"$OUT.up2" 2>&1 &&
	grep -F "already running" "$OUT.up2" &&
	grep -Fx "$URL" "$OUT.up2" &&
	[ "$(echo $(pids))" = "$(echo $first)" ] &&
	all_alive $first &&
	[ "$(echo $(our_nginx))" = "$(echo $ours)" ] &&
	health
'

if [ -S /var/run/docker.sock ]; then
	test_expect_success 'anyonctl doctor reports ok while up' '
		"$BUILD/anyonctl" doctor >"$OUT.doctor" 2>&1 &&
		grep -F "all checks passed" "$OUT.doctor" &&
		! grep -F FAIL "$OUT.doctor"
	'
else
	test_skip 'anyonctl doctor reports ok while up' DOCKER
fi

test_expect_success 'anyonctl migrate twice is harmless' '
	"$BUILD/anyonctl" migrate >"$OUT.m1" 2>&1 &&
	"$BUILD/anyonctl" migrate >"$OUT.m2" 2>&1 &&
	grep -E "^schema at version [0-9]+ \(0 applied now\)$" "$OUT.m1" &&
	grep -E "^schema at version [0-9]+ \(0 applied now\)$" "$OUT.m2" &&
	health
'

test_expect_success 'dev down stops exactly what up started' '
	"$SRC/dev" down >"$OUT.down" 2>&1 &&
	none_alive $first $ours &&
	[ -z "$(strays)" ] &&
	! test -e "$RUN/fcgi.sock" &&
	! test -e "$RUN/fcgi.pid" && ! test -e "$RUN/worker.pid" && ! test -e "$RUN/nginx.pid" &&
	! health
'

test_expect_success 'dev down leaves other processes alone' '
	alive $sentinel &&
	decoy_ok
'

test_expect_success 'anyonctl doctor fails when the service is down' '
	! "$BUILD/anyonctl" doctor >"$OUT.doctor2" 2>&1 &&
	grep -E "^FAIL +fastcgi" "$OUT.doctor2" &&
	grep -F "problems found" "$OUT.doctor2"
'

test_expect_success 'dev down when nothing runs is harmless' '
	"$SRC/dev" down >"$OUT.down2" 2>&1 &&
	alive $sentinel
'

test_expect_success 'dev up works again, with new processes' '
	"$SRC/dev" up --no-build >"$OUT.up3" 2>&1 &&
	grep -Fx "$URL" "$OUT.up3" &&
	second=$(pids) &&
	[ $(echo $second | wc -w) = 3 ] &&
	all_alive $second &&
	disjoint "$first" "$second" &&
	ours2=$(our_nginx) &&
	wait_for 10 health
'

test_expect_success 'and down again stops them' '
	"$SRC/dev" down >"$OUT.down3" 2>&1 &&
	none_alive $second $ours2 &&
	[ -z "$(strays)" ] &&
	alive $sentinel
'

# ---- an up that fails half-way leaves nothing running ----
test_expect_success 'up on a port something listens on: non-zero, names the port, starts nothing' '
	hold_port listen &&
	! ANYON_DATA_DIR=$DATA/fail-listen ANYON_PORT=$HOLD_PORT "$SRC/dev" up --no-build >"$OUT.fail1" 2>&1 &&
	grep -F "port $HOLD_PORT is already in use" "$OUT.fail1" &&
	nothing_runs_in "$DATA/fail-listen" &&
	! test -e "$DATA/fail-listen/log/fcgi.log" &&
	alive $HOLD_PID && alive $sentinel
'

test_expect_success 'up on a port held but not listening: nginx fails after the pool and worker started; both are stopped' '
	hold_port bind &&
	! ANYON_DATA_DIR=$DATA/fail-bind ANYON_PORT=$HOLD_PORT "$SRC/dev" up --no-build >"$OUT.fail2" 2>&1 &&
	grep -F "could not listen on 127.0.0.1:$HOLD_PORT" "$OUT.fail2" &&
	grep -F "already in use" "$OUT.fail2" &&
	grep -E "stopped what this run had started: .*worker.*fcgi" "$OUT.fail2" &&
	grep -F "anyon-fcgi" "$DATA/fail-bind/log/fcgi.log" &&
	nothing_runs_in "$DATA/fail-bind" &&
	alive $HOLD_PID && alive $sentinel
'

test_expect_success 'a worker that dies at start: up fails at once naming it, and stops the pool it started' '
	start=$SECONDS &&
	! ANYON_WORKER_WRAPPER=false ANYON_DATA_DIR=$DATA/fail-worker "$SRC/dev" up --no-build >"$OUT.fail3" 2>&1 &&
	[ $((SECONDS - start)) -lt 20 ] &&
	grep -F "anyon-worker did not start" "$OUT.fail3" &&
	grep -F "stopped what this run had started" "$OUT.fail3" &&
	nothing_runs_in "$DATA/fail-worker" &&
	! health
'

test_expect_success 'a failed up records nothing' '
	! test -e "$ANYON_DEV_STATE"
'

# ---- status and down find the stack up started ----
port2=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL2=http://127.0.0.1:$port2/

test_expect_success 'up with a custom data dir and port records them' '
	ANYON_DATA_DIR=$DATA/custom ANYON_PORT=$port2 "$SRC/dev" up --no-build >"$OUT.up4" 2>&1 &&
	grep -Fx "$URL2" "$OUT.up4" &&
	grep -Fx "data=$DATA/custom" "$ANYON_DEV_STATE" &&
	grep -Fx "port=$port2" "$ANYON_DEV_STATE" &&
	custom=$(cat "$DATA/custom/run/fcgi.pid" "$DATA/custom/run/worker.pid" "$DATA/custom/run/nginx.pid") &&
	all_alive $custom
'

test_expect_success 'status without ANYON_DATA_DIR or ANYON_PORT finds it' '
	env -u ANYON_DATA_DIR -u ANYON_PORT "$SRC/dev" status >"$OUT.st1" 2>&1 &&
	grep -F "$DATA/custom" "$OUT.st1" &&
	[ $(grep -c " running (pid " "$OUT.st1") = 3 ] &&
	grep -F "$URL2" "$OUT.st1"
'

test_expect_success 'an explicit ANYON_DATA_DIR still wins' '
	"$SRC/dev" status >"$OUT.st2" 2>&1 &&
	[ $(grep -c " stopped$" "$OUT.st2") = 3 ] &&
	! grep -F "$DATA/custom" "$OUT.st2" &&
	"$SRC/dev" down >"$OUT.down4" 2>&1 &&
	all_alive $custom &&
	grep -Fx "data=$DATA/custom" "$ANYON_DEV_STATE"
'

test_expect_success 'down without ANYON_DATA_DIR stops it and forgets it' '
	env -u ANYON_DATA_DIR -u ANYON_PORT "$SRC/dev" down >"$OUT.down5" 2>&1 &&
	grep -F "$DATA/custom" "$OUT.down5" &&
	none_alive $custom &&
	nothing_runs_in "$DATA/custom" &&
	! test -e "$ANYON_DEV_STATE" &&
	[ -z "$(strays)" ] &&
	alive $sentinel && decoy_ok
'

test_expect_success 'no sanitizer reports' '
	! ls "$DATA"/log/asan* "$DATA"/log/ubsan* 2>/dev/null &&
	! grep -rlE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$DATA"/log "$DATA"/*/log
'

echo "1..$test_count"
[ $test_failed = 0 ]
