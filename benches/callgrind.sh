#!/usr/bin/env bash
# Server instructions per echo round trip or per fan-out delivery, under callgrind: a cost
# that a shared, noisy machine does not blur, for before/after comparisons of the engine.
#
#   benches/callgrind.sh echo     BIN [DEPTH]   instructions per round trip (C=100, S=32)
#   benches/callgrind.sh app-echo EXAMPLE [DEPTH]  the same through the app API: EXAMPLE is
#                                               a built examples/echo_server
#   benches/callgrind.sh fanout   BIN [SUBS]    instructions per delivery (S=32, D=16, /ws)
#   benches/callgrind.sh raw-fanout EXAMPLE [SUBS]  the same for a raw pub/sub server: EXAMPLE
#                                               is a built examples/broadcast (taking ADDR),
#                                               or ../shared/peers/uws-hub (taking a port)
#
# BIN is the wsloop binary to measure (build the other side in its own checkout and target
# directory). The server runs under valgrind, the loader (this checkout's release wsloop)
# outside it; two runs of different lengths are differenced, so startup and the handshakes
# cancel out. Needs valgrind.
set -euo pipefail
mode=${1:?echo or fanout}; bin=${2:?the wsloop binary to measure}; arg=${3:-}
cd "$(dirname "$0")/.."
loader=$PWD/target/release/wsloop
out=$(mktemp -d)
server=
# The server under valgrind goes too if a load fails (set -e leaves the script there).
trap '[[ -n $server ]] && kill -TERM "$server" 2>/dev/null; rm -rf "$out"' EXIT
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }

# run TAG LOAD...: one server under callgrind, one load against it; prints instructions.
run() {
    local tag=$1 port; shift
    port=$((20000 + RANDOM % 20000))
    if [[ $mode == raw-fanout && $(basename "$bin") == uws-hub ]]; then
        valgrind --tool=callgrind --callgrind-out-file="$out/$tag.cg" "$bin" "$port" \
            >"$out/$tag.log" 2>&1 &
    elif [[ $mode == app-echo || $mode == raw-fanout ]]; then
        valgrind --tool=callgrind --callgrind-out-file="$out/$tag.cg" "$bin" "127.0.0.1:$port" \
            >"$out/$tag.log" 2>&1 &
    else
        valgrind --tool=callgrind --callgrind-out-file="$out/$tag.cg" "$bin" serve \
            --listen "127.0.0.1:$port" --log-level warn --rate-limit off --handshake-rate 0 \
            --max-connections-per-ip 0 --max-connections-per-user 0 --max-connections 200000 \
            >"$out/$tag.log" 2>&1 &
    fi
    server=$!
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    "$loader" bench "$@" "ws://127.0.0.1:$port$path" --quiet --json --timeout 120s >"$out/$tag.json"
    kill -TERM "$server"; wait "$server" || true
    server=
}

case $mode in
    echo|app-echo)
        path=/echo
        run short echo -c 100 -s 32 -d "${arg:-16}" -n 20000
        run long echo -c 100 -s 32 -d "${arg:-16}" -n 40000
        ;;
    fanout)
        path=/ws
        run short fanout -c "${arg:-100}" -s 32 -d 16 -t 3s
        run long fanout -c "${arg:-100}" -s 32 -d 16 -t 6s
        ;;
    raw-fanout)
        path=/bench
        run short fanout --raw -c "${arg:-100}" -s 32 -d 16 -t 3s
        run long fanout --raw -c "${arg:-100}" -s 32 -d 16 -t 6s
        ;;
    *) echo "mode: echo, app-echo, fanout or raw-fanout" >&2; exit 2 ;;
esac
python3 - "$out" "$mode" <<'PY'
import json, sys
out, mode = sys.argv[1], sys.argv[2]
def instructions(tag):
    for line in open(f"{out}/{tag}.cg"):
        if line.startswith("summary:"):
            return int(line.split()[1])
def units(tag):
    report = json.load(open(f"{out}/{tag}.json"))
    echo = mode in ("echo", "app-echo")
    return 20000 if echo and tag == "short" else 40000 if echo else report["deliveries"]
per = (instructions("long") - instructions("short")) / (units("long") - units("short"))
print(f"{per:.1f} instructions per {'delivery' if 'fanout' in mode else 'round trip'}")
PY
