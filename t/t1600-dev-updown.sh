#!/usr/bin/env bash
# ./dev up and ./dev down: up twice is harmless, down stops exactly what up
# started (and nothing else), up works again; anyonctl doctor and migrate
# against a running and a stopped deployment.
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

sentinel=
cleanup () {
	"$SRC/dev" down >/dev/null 2>&1
	[ -n "$sentinel" ] && kill "$sentinel" 2>/dev/null
	if [ $test_failed = 0 ]; then rm -rf "$DATA"; else echo "# data kept in $DATA"; fi
}
trap cleanup EXIT

mkdir -p "$DATA/log" || exit 1
sleep 600 &
sentinel=$!
# Other nginx masters on this machine (the system's, other checkouts').
other_nginx=$(pgrep -f '^nginx: master' | tr '\n' ' ')

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
	all_alive $other_nginx
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

test_expect_success 'no sanitizer reports' '
	! ls "$DATA"/log/asan* "$DATA"/log/ubsan* 2>/dev/null
'

echo "1..$test_count"
[ $test_failed = 0 ]
