# shellcheck shell=bash
# Shared shell functions for the benchmarks in benches/ (proxy.sh, gate.sh). Sourced, not run:
# the sourcing script sets `set -Eeuo pipefail` and ROOT (the repository) first, then calls
# bench_traps once it has checked its knobs.
#
# Everything here talks to 127.0.0.1 only.

# Clients must never leave the machine, even if something falls back to Docker Hub.
export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
export http_proxy=$HTTP_PROXY https_proxy=$HTTPS_PROXY
export NO_PROXY=127.0.0.1,localhost,::1 no_proxy=127.0.0.1,localhost,::1

ACCEPT='application/vnd.oci.image.manifest.v1+json'
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# need_tools HINT TOOL...: every TOOL is on PATH, or die with the install HINT.
need_tools() {
    local hint=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "'$tool' not found ($hint)"
    done
}

# duration_s DURATION: wrk's -d accepts 10, 10s, 1m, ...; prints whole seconds (0 if invalid).
duration_s() {
    awk -v d="$1" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; else if (d ~ /h$/) n *= 3600; print int(n) }'
}

# === process bookkeeping ===

PIDS=()  # long-running components, stopped in reverse start order
CHILD="" # the load generator or download currently running
TMP=""

# stop_pid PID: TERM, up to 10 s grace, then KILL. Only for processes this script started.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in {1..100}; do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM ERR
    set +e
    [[ -n $CHILD ]] && kill -TERM "$CHILD" 2>/dev/null
    local i pid f
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null
    done
    for pid in ${CHILD:+"$CHILD"} "${PIDS[@]}"; do
        for _ in {1..100}; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [[ -n $TMP && -d $TMP ]]; then
        if ((rc != 0)); then
            for f in "$TMP"/*.log; do
                [[ -s $f ]] && {
                    log "last lines of $f:"
                    tail -n 20 "$f" >&2
                }
            done
        fi
        if [[ ${BENCH_KEEP_TMP:-0} == 1 ]]; then
            log "kept $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}

# bench_traps: every process in PIDS and CHILD is stopped on exit, also on failure or Ctrl-C.
bench_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
}

# Runs a bounded command in the background and waits, so a signal interrupts it at once.
bounded() {
    "$@" &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port VAR: a loopback port nothing listens on, below the ephemeral range.
TAKEN=" "
free_port() {
    local p
    for _ in {1..500}; do
        p=$((20000 + RANDOM % 12000))
        if [[ $TAKEN != *" $p "* ]] && ! port_open "$p"; then
            TAKEN+="$p "
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    die "no free loopback port found"
}

# wait_port PORT PID NAME: until PID listens on PORT (30 s at most).
wait_port() {
    for _ in {1..300}; do
        kill -0 "$2" 2>/dev/null || die "$3 exited before listening on port $1"
        port_open "$1" && return 0
        sleep 0.1
    done
    die "$3 did not listen on port $1 within 30 s"
}

calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# pass EXPR: PASS if the awk expression holds, else MISS.
pass() { if [[ $(awk "BEGIN { print ($1) ? 1 : 0 }") == 1 ]]; then echo PASS; else echo MISS; fi; }

# cpu_ticks PID...: user + system CPU ticks of these processes and their children (nginx's
# workers are children of its master).
cpu_ticks() {
    local p all=()
    for p in "$@"; do
        all+=("$p")
        # pgrep exits 1 when there are no children.
        all+=($(pgrep -P "$p" || true))
    done
    local sum=0 t
    for p in "${all[@]}"; do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        sum=$((sum + t))
    done
    echo "$sum"
}

# parse_wrk FILE -> "rps p50_ms p99_ms requests non2xx socket_errors"
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v * 0.001
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/)  return v * 60000
            if (v ~ /s$/)  return v * 1000
            return v + 0
        }
        $1 == "50%"           { p50 = ms($2) }
        $1 == "99%"           { p99 = ms($2) }
        / requests in /       { reqs = $1 }
        /^Requests\/sec:/     { rps = $2 }
        /Non-2xx or 3xx/      { bad = $NF }
        /Socket errors:/      { gsub(",", ""); serr = $4 + $6 + $8 + $10 }
        END { printf "%s %.3f %.3f %s %d %d\n", rps, p50, p99, reqs, bad, serr }
    ' "$1"
}

# repo_state: sets COMMIT (short hash, or "unknown") and DIRTY (0 = clean work tree). Read-only
# git; a failing git or a long status cannot trip pipefail.
repo_state() {
    COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    DIRTY=$({ git -C "$ROOT" --no-optional-locks status --porcelain 2>/dev/null || true; } | wc -c)
}

# stats < numbers, one a line -> "count median p99 max" (nearest rank; empty input: "0 0 0 0").
stats() {
    sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "0 0 0 0"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            r = int(NR * 0.99); if (r < NR * 0.99) r++; if (r < 1) r = 1
            print NR, m, v[r], v[NR]
        }'
}

# === build, temp dir, upstream registry, test images ===

# build_pullgate: cargo build --release (unless BENCH_NO_BUILD=1); sets PULLGATE_BIN.
build_pullgate() {
    if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
        log "building pullgate (cargo build --release --locked)"
        (cd "$ROOT" && cargo build --release --locked) || die "cargo build failed"
    fi
    PULLGATE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/pullgate"
    [[ -x $PULLGATE_BIN ]] || die "no binary at $PULLGATE_BIN"
}

# make_tmp NAME: the temp dir, removed on exit unless BENCH_KEEP_TMP=1; sets TMP.
make_tmp() {
    TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")
    log "temp dir $TMP"
}

# start_registry: docker-registry with filesystem storage in TMP on a free loopback port;
# sets REG_PORT, REG_PID, REG.
start_registry() {
    free_port REG_PORT
    cat >"$TMP/registry.yml" <<EOF
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $TMP/registry-data } }
http:
  addr: 127.0.0.1:$REG_PORT
EOF
    docker-registry serve "$TMP/registry.yml" >"$TMP/registry.log" 2>&1 &
    REG_PID=$!
    PIDS+=("$REG_PID")
    wait_port "$REG_PORT" "$REG_PID" docker-registry
    REG=http://127.0.0.1:$REG_PORT
    log "docker-registry on $REG (pid $REG_PID)"
}

# An OCI layout written by hand, one image per ref name.
LAYOUT=""
INDEX_ENTRIES=()

# layout_init: an empty OCI layout in TMP/layout; sets LAYOUT.
layout_init() {
    LAYOUT=$TMP/layout
    INDEX_ENTRIES=()
    mkdir -p "$LAYOUT/blobs/sha256"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
}

# add_blob FILE -> sets BLOB_HEX and BLOB_SIZE, moves FILE into the layout.
add_blob() {
    BLOB_HEX=$(sha256sum "$1" | cut -d' ' -f1)
    BLOB_SIZE=$(stat -c %s "$1")
    mv "$1" "$LAYOUT/blobs/sha256/$BLOB_HEX"
}

# add_image REFNAME LAYER_FILE LAYER_MEDIA_TYPE DIFF_ID_HEX -> sets IMG_MANIFEST_HEX, LAYER_HEX
add_image() {
    local ref=$1 layer_file=$2 layer_mt=$3 diff_id=$4
    add_blob "$layer_file"
    LAYER_HEX=$BLOB_HEX
    local layer_size=$BLOB_SIZE
    printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$diff_id" >"$TMP/config.json"
    add_blob "$TMP/config.json"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s}]}' \
        "$BLOB_HEX" "$BLOB_SIZE" "$layer_mt" "$LAYER_HEX" "$layer_size" >"$TMP/manifest.json"
    add_blob "$TMP/manifest.json"
    IMG_MANIFEST_HEX=$BLOB_HEX
    INDEX_ENTRIES+=("$(printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}' \
        "$BLOB_HEX" "$BLOB_SIZE" "$ref")")
    local IFS=,
    printf '{"schemaVersion":2,"manifests":[%s]}' "${INDEX_ENTRIES[*]}" >"$LAYOUT/index.json"
}

# add_small_image: the "small" image (one tiny tar.gz layer) -> sets SMALL_MANIFEST_HEX.
add_small_image() {
    mkdir -p "$TMP/small-src"
    printf 'pullgate benchmark\n' >"$TMP/small-src/hello"
    tar -C "$TMP/small-src" --mtime=@0 --owner=0 --group=0 -cf "$TMP/small.tar" hello
    local diff
    diff=$(sha256sum "$TMP/small.tar" | cut -d' ' -f1)
    gzip -n "$TMP/small.tar"
    add_image small "$TMP/small.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip "$diff"
    SMALL_MANIFEST_HEX=$IMG_MANIFEST_HEX
}

# push_image REFNAME REPO:TAG: the layout's image REFNAME to the registry, digests preserved.
push_image() {
    log "pushing $2 with skopeo"
    bounded timeout 600 skopeo copy --quiet --preserve-digests --dest-tls-verify=false \
        "oci:$LAYOUT:$1" "docker://127.0.0.1:$REG_PORT/$2" ||
        die "skopeo push of $2 failed"
}

# manifest_hex URL: sha256 of the manifest bytes served at URL (Accept: OCI image manifest).
manifest_hex() {
    curl -sf --max-time 30 -H "Accept: $ACCEPT" "$1" | sha256sum | cut -d' ' -f1
}
