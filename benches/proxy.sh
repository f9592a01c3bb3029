#!/usr/bin/env bash
# pullgate proxy benchmark: pullgate vs. a direct pull from the same upstream vs. nginx as a
# plain reverse proxy, all in one run on this machine (design.md §10). See benches/README.md.
#
# Everything talks to 127.0.0.1 only. Every process this script starts is stopped on exit,
# also on failure or Ctrl-C. The PASS/MISS lines are information: the exit status is 0 unless
# something broke (a component did not start, a request failed, wrong bytes).
#
# Knobs (environment):
#   BENCH_DURATION      wrk duration per manifest run              (default 10s)
#   BENCH_CONNS         concurrent connections, space separated    (default "1 16 64")
#   BENCH_BLOB_MIB      size of the large layer in MiB             (default 256)
#   BENCH_BLOB_RUNS     downloads per target; the median counts    (default 3)
#   BENCH_NGINX_BUFFER  nginx proxy_buffer_size/proxy_buffers size (default 64k; "default" =
#                       nginx's own 4k/8k, which halves its streaming speed, see README)
#   BENCH_TMPDIR        where the temp dir is made                 (default $TMPDIR or /tmp)
#   BENCH_KEEP_TMP      1 = keep the temp dir (logs, configs, raw wrk output)
#   BENCH_NO_BUILD      1 = skip cargo build, use the existing release binary
#   PULLGATE_LOG        pullgate's log filter                      (default "info", as shipped)

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNS:-"1 16 64"}
BLOB_MIB=${BENCH_BLOB_MIB:-256}
BLOB_RUNS=${BENCH_BLOB_RUNS:-3}
NGINX_BUFFER=${BENCH_NGINX_BUFFER:-64k}
PG_LOG=${PULLGATE_LOG:-info}
MANIFEST_PATH=/v2/library/small/manifests/1.0
TARGETS=(direct pullgate nginx)
# Blob downloads add a diagnostic path: pullgate with `Range: bytes=0-`. The registry answers
# 206, and pullgate cannot check a partial body against the digest, so this is pullgate's
# forwarding cost without the sha256 check. It is reported, never part of a target.
BLOB_TARGETS=(direct pullgate nginx pullgate-nohash)

need_tools "apt-get install -y docker-registry skopeo nginx-light wrk curl jq procps" \
    cargo docker-registry skopeo nginx wrk curl jq sha256sum awk timeout pgrep getconf
[[ $BLOB_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_BLOB_RUNS must be a positive integer"
[[ $BLOB_MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_BLOB_MIB must be a positive integer"
[[ $NGINX_BUFFER == default || $NGINX_BUFFER =~ ^[1-9][0-9]*[kKmM]$ ]] ||
    die "BENCH_NGINX_BUFFER must be like 64k, or 'default'"
for c in $CONNS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONNS must be positive integers"; done
# The number of seconds is needed for the time bound.
DUR_S=$(duration_s "$DURATION")
((DUR_S > 0)) || die "BENCH_DURATION '$DURATION' is not a duration"

# Every process this script starts (PIDS, CHILD; lib.sh) is stopped on exit.
bench_traps

# === 1. build, upstream registry, test images ===

build_pullgate
make_tmp pullgate-bench
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
start_registry

# An OCI layout with two images: "small" (tiny tar.gz layer) and "big" (BLOB_MIB MiB of
# random bytes as an uncompressed layer, so nothing along the way can compress it).
layout_init
log "writing test images (small, big = $BLOB_MIB MiB)"
add_small_image

BLOB_BYTES=$((BLOB_MIB * 1024 * 1024))
head -c "$BLOB_BYTES" /dev/urandom >"$TMP/big.layer"
BIG_DIFF=$(sha256sum "$TMP/big.layer" | cut -d' ' -f1)
add_image big "$TMP/big.layer" application/vnd.oci.image.layer.v1.tar "$BIG_DIFF"
BIG_HEX=$LAYER_HEX
BLOB_PATH=/v2/library/big/blobs/sha256:$BIG_HEX

for img in small big; do
    push_image "$img" "library/$img:1.0"
done
rm -rf "$LAYOUT" # the registry has its own copy; halves the disk use

got=$(manifest_hex "$REG$MANIFEST_PATH")
[[ $got == "$SMALL_MANIFEST_HEX" ]] || die "registry serves a different small manifest ($got)"

# === 2. pullgate and nginx in front of the same registry ===

free_port PG_PORT
cat >"$TMP/pullgate.toml" <<EOF
[server]
listen = "127.0.0.1:$PG_PORT"

[audit]
path = "$TMP/audit.jsonl"

[[registry]]
name = "docker.io"
url = "$REG"
default = true

[[rule]]
name = "all"
images = ["**"]
mode = "off"

[typosquat]
mode = "off"
EOF
"$PULLGATE_BIN" check-config --config "$TMP/pullgate.toml" >"$TMP/check-config.out" 2>&1 || {
    cat "$TMP/check-config.out" >&2
    die "pullgate check-config rejected the benchmark config"
}
PULLGATE_LOG=$PG_LOG "$PULLGATE_BIN" serve --config "$TMP/pullgate.toml" >"$TMP/pullgate.log" 2>&1 &
PG_PID=$!
PIDS+=("$PG_PID")
wait_port "$PG_PORT" "$PG_PID" pullgate
PG=http://127.0.0.1:$PG_PORT
log "pullgate on $PG (pid $PG_PID, PULLGATE_LOG=$PG_LOG)"

free_port NG_PORT
mkdir -p "$TMP/nginx/tmp"
if [[ $NGINX_BUFFER == default ]]; then
    NGINX_BUFFERS=""
else
    # With proxy_buffering off nginx reads the upstream in proxy_buffer_size pieces.
    NGINX_BUFFERS="proxy_buffer_size $NGINX_BUFFER; proxy_buffers 4 $NGINX_BUFFER; proxy_busy_buffers_size $NGINX_BUFFER;"
fi
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    upstream registry {
        server 127.0.0.1:$REG_PORT;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$NG_PORT;
        client_max_body_size 0;
        location / {
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            $NGINX_BUFFERS
        }
    }
}
EOF
nginx -t -q -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" -e "$TMP/nginx-error.log" ||
    die "nginx rejected its config"
nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" -e "$TMP/nginx-error.log" &
NG_PID=$!
PIDS+=("$NG_PID")
wait_port "$NG_PORT" "$NG_PID" nginx
NG=http://127.0.0.1:$NG_PORT
log "nginx on $NG (pid $NG_PID, buffers: $NGINX_BUFFER)"

declare -A BASE=([direct]=$REG [pullgate]=$PG [nginx]=$NG [pullgate-nohash]=$PG)
# Whose CPU time is the proxy's for each path (direct has no proxy).
declare -A PROXY_PID=([direct]="" [pullgate]=$PG_PID [nginx]=$NG_PID [pullgate-nohash]=$PG_PID)

# Same manifest bytes through every path; also warms connections and pools.
for t in "${TARGETS[@]}"; do
    for _ in 1 2 3; do
        got=$(manifest_hex "${BASE[$t]}$MANIFEST_PATH")
        [[ $got == "$SMALL_MANIFEST_HEX" ]] || die "$t serves a different small manifest ($got)"
    done
done
RSS_START_KB=$(vm_kb "$PG_PID" VmRSS)

# === 3a. manifest GET: requests/s and latency ===

# CPU microseconds per request: proxy and registry, from their CPU time during the run.
declare -A RPS P50 P99 REQS BAD SERR PCPU RCPU
BROKEN=0
for c in $CONNS; do
    threads=$((c < 2 ? c : 2))
    for t in "${TARGETS[@]}"; do
        log "manifest GET: $t, $c connection(s), $DURATION"
        out=$TMP/wrk-$t-$c.txt
        p0=$(cpu_ticks ${PROXY_PID[$t]})
        r0=$(cpu_ticks "$REG_PID")
        bounded timeout -k 5 $((DUR_S + 30)) wrk -t"$threads" -c"$c" -d"$DURATION" --timeout 10s --latency \
            -H "Accept: $ACCEPT" "${BASE[$t]}$MANIFEST_PATH" >"$out" 2>&1 || {
            cat "$out" >&2
            die "wrk against $t failed"
        }
        p1=$(cpu_ticks ${PROXY_PID[$t]})
        r1=$(cpu_ticks "$REG_PID")
        read -r RPS[$t,$c] P50[$t,$c] P99[$t,$c] REQS[$t,$c] BAD[$t,$c] SERR[$t,$c] < <(parse_wrk "$out")
        [[ -n ${RPS[$t,$c]} && ${REQS[$t,$c]:-0} -gt 0 ]] || {
            cat "$out" >&2
            die "cannot read wrk's output"
        }
        PCPU[$t,$c]=$(calc "($p1 - $p0) * 1000000 / $CLK_TCK / ${REQS[$t,$c]}" 0)
        RCPU[$t,$c]=$(calc "($r1 - $r0) * 1000000 / $CLK_TCK / ${REQS[$t,$c]}" 0)
        if ((BAD[$t,$c] + SERR[$t,$c] > 0)); then
            log "WARNING: $t at $c connections: ${BAD[$t,$c]} non-2xx responses, ${SERR[$t,$c]} socket errors"
            BROKEN=1
        fi
    done
done
PEAK_AFTER_MANIFEST_KB=$(vm_kb "$PG_PID" VmHWM)

# === 3b. blob throughput ===

log "verifying the $BLOB_MIB MiB blob through pullgate"
got=$(curl -sf --max-time 600 "$PG$BLOB_PATH" | sha256sum | cut -d' ' -f1)
[[ $got == "$BIG_HEX" ]] || die "blob through pullgate hashes to $got, not $BIG_HEX"

declare -A BLOB_SPEEDS BLOB_MEDIAN BLOB_PTICKS BLOB_RTICKS BLOB_PCPU BLOB_RCPU
for t in "${BLOB_TARGETS[@]}"; do BLOB_PTICKS[$t]=0 BLOB_RTICKS[$t]=0; done
for ((run = 1; run <= BLOB_RUNS; run++)); do
    for t in "${BLOB_TARGETS[@]}"; do # interleaved, so drifting background load hits all alike
        want=200 range=()
        [[ $t == pullgate-nohash ]] && want=206 range=(-r 0-)
        p0=$(cpu_ticks ${PROXY_PID[$t]})
        r0=$(cpu_ticks "$REG_PID")
        bounded curl -s --max-time 600 "${range[@]}" -o /dev/null \
            -w '%{http_code} %{size_download} %{speed_download}\n' "${BASE[$t]}$BLOB_PATH" >"$TMP/curl.out" || true
        p1=$(cpu_ticks ${PROXY_PID[$t]})
        r1=$(cpu_ticks "$REG_PID")
        read -r code size speed <"$TMP/curl.out" || true
        [[ ${code:-} == "$want" && ${size:-} == "$BLOB_BYTES" ]] ||
            die "blob download from $t failed (status ${code:-none}, ${size:-0} of $BLOB_BYTES bytes)"
        mbps=$(calc "$speed / 1000000" 1)
        log "blob: $t run $run: $mbps MB/s"
        BLOB_SPEEDS[$t]+="$mbps "
        BLOB_PTICKS[$t]=$((BLOB_PTICKS[$t] + p1 - p0))
        BLOB_RTICKS[$t]=$((BLOB_RTICKS[$t] + r1 - r0))
    done
done
for t in "${BLOB_TARGETS[@]}"; do
    BLOB_MEDIAN[$t]=$(tr ' ' '\n' <<<"${BLOB_SPEEDS[$t]}" | awk 'NF' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    # CPU seconds per GB (10^9 bytes) moved.
    BLOB_PCPU[$t]=$(calc "${BLOB_PTICKS[$t]} / $CLK_TCK / ($BLOB_BYTES * $BLOB_RUNS / 1e9)" 2)
    BLOB_RCPU[$t]=$(calc "${BLOB_RTICKS[$t]} / $CLK_TCK / ($BLOB_BYTES * $BLOB_RUNS / 1e9)" 2)
done

# === 3c. pullgate's memory ===

kill -0 "$PG_PID" 2>/dev/null || die "pullgate died during the benchmark"
PEAK_KB=$(vm_kb "$PG_PID" VmHWM)
RSS_END_KB=$(vm_kb "$PG_PID" VmRSS)
PG_LOG_LINES=$(wc -l <"$TMP/pullgate.log")
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# === 4. report ===

NGINX_LABEL=$([[ $NGINX_BUFFER == default ]] && echo "nginx default buffers" || echo "proxy_buffer_size $NGINX_BUFFER")

echo
echo "pullgate proxy benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $LOADAVG_START at start, $LOADAVG_END at end"
echo "client, registry and proxy share this machine: compare within one run, not across machines."
echo "nginx: proxy_buffering off, keepalive upstream pool, $NGINX_LABEL. pullgate: PULLGATE_LOG=$PG_LOG."
echo
echo "Manifest GET $MANIFEST_PATH  (wrk, $DURATION per run; CPU = CPU time per request)"
printf '%6s  %-9s %9s %9s %9s %7s %14s %14s\n' conns target 'req/s' 'p50 ms' 'p99 ms' errors 'proxy CPU us' 'registry CPU us'
for c in $CONNS; do
    for t in "${TARGETS[@]}"; do
        if [[ $t == direct ]]; then pc=-; else pc=${PCPU[$t,$c]}; fi
        printf '%6s  %-9s %9.0f %9.3f %9.3f %7d %14s %14s\n' "$c" "$t" "${RPS[$t,$c]}" "${P50[$t,$c]}" "${P99[$t,$c]}" \
            $((BAD[$t,$c] + SERR[$t,$c])) "$pc" "${RCPU[$t,$c]}"
    done
done
echo
echo "Manifest ratios (p99 overhead = proxy p99 - direct p99)"
printf '%6s  %15s %15s %16s %18s  %s\n' conns 'req/s pg/direct' 'req/s pg/nginx' 'pg p99 overhead' 'nginx p99 overhead' 'pg overhead <= nginx'
declare -A R_PD R_PN OV_PG OV_NG P99_OK
for c in $CONNS; do
    R_PD[$c]=$(calc "${RPS[pullgate,$c]} / ${RPS[direct,$c]}")
    R_PN[$c]=$(calc "${RPS[pullgate,$c]} / ${RPS[nginx,$c]}")
    OV_PG[$c]=$(calc "${P99[pullgate,$c]} - ${P99[direct,$c]}")
    OV_NG[$c]=$(calc "${P99[nginx,$c]} - ${P99[direct,$c]}")
    P99_OK[$c]=$(pass "${OV_PG[$c]} <= ${OV_NG[$c]}")
    printf '%6s  %15s %15s %13s ms %15s ms  %s\n' "$c" "${R_PD[$c]}" "${R_PN[$c]}" "${OV_PG[$c]}" "${OV_NG[$c]}" "${P99_OK[$c]}"
done
echo
echo "Blob GET, $BLOB_MIB MiB incompressible (curl, $BLOB_RUNS runs each, median; MB = 10^6 bytes; CPU = CPU seconds per GB)"
printf '%-16s %12s %14s %16s   %s\n' target 'median MB/s' 'proxy CPU s/GB' 'registry CPU s/GB' 'runs (MB/s)'
for t in "${BLOB_TARGETS[@]}"; do
    if [[ $t == direct ]]; then pc=-; else pc=${BLOB_PCPU[$t]}; fi
    printf '%-16s %12s %14s %16s   %s\n' "$t" "${BLOB_MEDIAN[$t]}" "$pc" "${BLOB_RCPU[$t]}" "${BLOB_SPEEDS[$t]}"
done
echo "(pullgate-nohash = pullgate with 'Range: bytes=0-': 206, no digest check; diagnostic only)"
B_PD=$(calc "${BLOB_MEDIAN[pullgate]} / ${BLOB_MEDIAN[direct]}")
B_PN=$(calc "${BLOB_MEDIAN[pullgate]} / ${BLOB_MEDIAN[nginx]}")
B_DIRECT_OK=$(pass "$B_PD >= 0.9")
B_NGINX_OK=$(pass "${BLOB_MEDIAN[pullgate]} >= ${BLOB_MEDIAN[nginx]}")
echo "pullgate/direct = $B_PD   pullgate/nginx = $B_PN"
echo
echo "pullgate memory: RSS $((RSS_START_KB / 1024)) MiB after start; peak RSS (VmHWM) $((PEAK_AFTER_MANIFEST_KB / 1024)) MiB after the manifest runs, $((PEAK_KB / 1024)) MiB at the end"
echo "pullgate log: $PG_LOG_LINES lines at PULLGATE_LOG=$PG_LOG"
echo
echo "Targets (information only):"
echo "  blob throughput pullgate >= 0.9 x direct ....... $B_DIRECT_OK ($B_PD)"
echo "  blob throughput pullgate >= nginx .............. $B_NGINX_OK ($B_PN)"
for c in $CONNS; do
    dots=$(printf '%*s' $((9 - ${#c})) '' | tr ' ' '.')
    echo "  manifest p99 overhead <= nginx's, c=$c $dots ${P99_OK[$c]} (${OV_PG[$c]} ms vs ${OV_NG[$c]} ms)"
done

# The same as JSON.
mkdir -p "$ROOT/benches/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULT=$ROOT/benches/results/proxy-$STAMP.json
manifest_json=$(
    for c in $CONNS; do
        for t in "${TARGETS[@]}"; do
            pc=${PCPU[$t,$c]}
            [[ $t == direct ]] && pc=null
            jq -nc --arg t "$t" --argjson c "$c" --argjson rps "${RPS[$t,$c]}" --argjson p50 "${P50[$t,$c]}" \
                --argjson p99 "${P99[$t,$c]}" --argjson n "${REQS[$t,$c]}" --argjson bad "${BAD[$t,$c]}" \
                --argjson serr "${SERR[$t,$c]}" --argjson pc "$pc" --argjson rc "${RCPU[$t,$c]}" \
                '{conns: $c, target: $t, requests_per_s: $rps, p50_ms: $p50, p99_ms: $p99, requests: $n,
                  non_2xx: $bad, socket_errors: $serr, proxy_cpu_us_per_request: $pc,
                  registry_cpu_us_per_request: $rc}'
        done
    done | jq -s .
)
manifest_ratios=$(
    for c in $CONNS; do
        jq -nc --argjson c "$c" --argjson pd "${R_PD[$c]}" --argjson pn "${R_PN[$c]}" \
            --argjson opg "${OV_PG[$c]}" --argjson ong "${OV_NG[$c]}" --arg ok "${P99_OK[$c]}" \
            '{conns: $c, rps_pullgate_over_direct: $pd, rps_pullgate_over_nginx: $pn,
              p99_overhead_pullgate_ms: $opg, p99_overhead_nginx_ms: $ong, p99_target: $ok}'
    done | jq -s .
)
blob_json=$(
    for t in "${BLOB_TARGETS[@]}"; do
        pc=${BLOB_PCPU[$t]}
        [[ $t == direct ]] && pc=null
        jq -nc --arg t "$t" --arg runs "${BLOB_SPEEDS[$t]}" --argjson med "${BLOB_MEDIAN[$t]}" \
            --argjson pc "$pc" --argjson rc "${BLOB_RCPU[$t]}" \
            '{($t): {runs_mb_per_s: ($runs | split(" ") | map(select(. != "") | tonumber)),
                     median_mb_per_s: $med, proxy_cpu_s_per_gb: $pc, registry_cpu_s_per_gb: $rc}}'
    done | jq -s add
)
repo_state
jq -n \
    --arg date "$STAMP" --arg commit "$COMMIT" --argjson dirty "$DIRTY" \
    --argjson nproc "$(nproc)" --arg kernel "$(uname -r)" \
    --arg load_start "$LOADAVG_START" --arg load_end "$LOADAVG_END" \
    --arg duration "$DURATION" --arg conns "$CONNS" --argjson blob_bytes "$BLOB_BYTES" \
    --argjson blob_runs "$BLOB_RUNS" --arg pg_log "$PG_LOG" --arg ngbuf "$NGINX_BUFFER" \
    --arg wrk "$({ wrk --version 2>&1 || true; } | awk 'NR == 1 { print $2 }')" \
    --arg nginx "$(nginx -v 2>&1 | awk -F/ '{ print $2 }')" \
    --argjson manifest "$manifest_json" --argjson manifest_ratios "$manifest_ratios" \
    --argjson blob "$blob_json" --argjson b_pd "$B_PD" --argjson b_pn "$B_PN" \
    --arg b_direct_ok "$B_DIRECT_OK" --arg b_nginx_ok "$B_NGINX_OK" \
    --argjson rss_start "$RSS_START_KB" --argjson peak_manifest "$PEAK_AFTER_MANIFEST_KB" \
    --argjson peak "$PEAK_KB" --argjson rss_end "$RSS_END_KB" --argjson log_lines "$PG_LOG_LINES" \
    '{
        date: $date, commit: $commit, worktree_dirty: ($dirty > 0),
        host: {nproc: $nproc, kernel: $kernel, loadavg_start: $load_start, loadavg_end: $load_end,
               wrk: $wrk, nginx: $nginx},
        params: {duration: $duration, conns: ($conns | split(" ") | map(select(. != "") | tonumber)),
                 manifest_path: "/v2/library/small/manifests/1.0", blob_bytes: $blob_bytes,
                 blob_runs: $blob_runs, pullgate_log: $pg_log, nginx_buffer: $ngbuf},
        manifest: $manifest,
        manifest_ratios: $manifest_ratios,
        blob: ($blob + {pullgate_over_direct: $b_pd, pullgate_over_nginx: $b_pn}),
        pullgate_memory_kb: {rss_after_start: $rss_start, peak_after_manifest: $peak_manifest,
                             peak: $peak, rss_end: $rss_end},
        pullgate_log_lines: $log_lines,
        targets: ([
            {name: "blob throughput pullgate >= 0.9 x direct", value: $b_pd, result: $b_direct_ok},
            {name: "blob throughput pullgate >= nginx", value: $b_pn, result: $b_nginx_ok}
        ] + ($manifest_ratios | map({name: "manifest p99 overhead <= nginx at c=\(.conns)",
                                     value: .p99_overhead_pullgate_ms, nginx: .p99_overhead_nginx_ms,
                                     result: .p99_target})))
    }' >"$RESULT"
echo
echo "results written to ${RESULT#"$ROOT"/}"

if ((BROKEN)); then
    die "some requests failed during the manifest runs (see the errors column)"
fi
