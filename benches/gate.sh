#!/usr/bin/env bash
# pullgate trust-gate benchmark: what the trust gate costs on a manifest request. pullgate with
# a rule in `mode = "off"` against the same pullgate with `mode = "enforce"` and a signed pin
# file, in front of the same registry, in one run on this machine. See benches/README.md.
#
# Everything talks to 127.0.0.1 only. Every process this script starts is stopped on exit,
# also on failure or Ctrl-C. The PASS/MISS lines are information: the exit status is 0 unless
# something broke (a component did not start, a request failed or was refused, wrong bytes, or
# the audit log shows that the warm-cache runs were not served from the verdict cache).
#
# Knobs (environment):
#   BENCH_DURATION      wrk duration per manifest run                 (default 10s)
#   BENCH_CONNS         concurrent connections, space separated       (default "1 16 64")
#   BENCH_TARGET_CONNS  the concurrency the <5% target is judged at   (default 64)
#   BENCH_ROUNDS        wrk runs per target and concurrency           (default 1)
#   BENCH_TAGS          extra tags t1..tN, each verified cold once    (default 200)
#   BENCH_TMPDIR        where the temp dir is made                    (default $TMPDIR or /tmp)
#   BENCH_KEEP_TMP      1 = keep the temp dir (logs, configs, audit logs, raw wrk output)
#   BENCH_NO_BUILD      1 = skip cargo build, use the existing release binary
#   PULLGATE_LOG        pullgate's log filter                         (default "info", as shipped)

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNS:-"1 16 64"}
TARGET_CONNS=${BENCH_TARGET_CONNS:-64}
ROUNDS=${BENCH_ROUNDS:-1}
TAGS=${BENCH_TAGS:-200}
PG_LOG=${PULLGATE_LOG:-info}
# The cold-verification pullgate also logs the gate's `verified ... elapsed_us=N` lines.
PG_DEBUG_LOG="$PG_LOG,pullgate::server::gate=debug"
IMAGE=docker.io/library/small
MANIFEST_PATH=/v2/library/small/manifests/1.0
# The concurrency runs: the registry itself, pullgate with the gate off, pullgate enforcing pins.
TARGETS=(direct off enforce)

need_tools "apt-get install -y docker-registry skopeo wrk curl jq procps" \
    cargo docker-registry skopeo wrk curl jq sha256sum awk timeout pgrep getconf date
for c in $CONNS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONNS must be positive integers"; done
[[ " $CONNS " == *" $TARGET_CONNS "* ]] || die "BENCH_TARGET_CONNS ($TARGET_CONNS) must be one of BENCH_CONNS ($CONNS)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ $TAGS =~ ^[1-9][0-9]*$ ]] && ((TAGS <= 10000)) || die "BENCH_TAGS must be an integer from 1 to 10000"
DUR_S=$(duration_s "$DURATION")
((DUR_S > 0)) || die "BENCH_DURATION '$DURATION' is not a duration"

# Every process this script starts (PIDS, CHILD; lib.sh) is stopped on exit.
bench_traps

# curl_batch CONFIG OUT: the transfers listed in the curl config file CONFIG, one after the other
# on one kept-alive connection in a single curl process; "status seconds url" per transfer in
# OUT. Bounded: 30 s per transfer, 10 minutes in all.
curl_batch() {
    bounded timeout -k 5 600 curl -s --max-time 30 -K "$1" \
        -w '%{http_code} %{time_total} %{url_effective}\n' >"$2" ||
        die "curl batch $1 failed (exit status $?)"
}

# === 1. build, upstream registry, test images ===

build_pullgate
make_tmp pullgate-gate
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
start_registry

layout_init
log "writing the test image"
add_small_image
cp "$LAYOUT/blobs/sha256/$SMALL_MANIFEST_HEX" "$TMP/small-manifest.json"
DIGEST=sha256:$SMALL_MANIFEST_HEX
push_image small library/small:1.0
# The same image under a name the pin file does not list: the enforce gate must refuse it.
push_image small library/unpinned:1.0
rm -rf "$LAYOUT"

# t1..tN: the same manifest bytes under more tags, PUT directly (one curl, one connection).
log "tagging library/small t1..t$TAGS"
{
    echo "request = \"PUT\""
    echo "header = \"Content-Type: $ACCEPT\""
    for ((i = 1; i <= TAGS; i++)); do
        echo "url = \"$REG/v2/library/small/manifests/t$i\""
        echo "upload-file = \"$TMP/small-manifest.json\""
        echo "output = \"/dev/null\""
    done
} >"$TMP/put.curl"
curl_batch "$TMP/put.curl" "$TMP/put.out"
n=$(awk '$1 == 201' "$TMP/put.out" | wc -l)
((n == TAGS)) || {
    awk '$1 != 201 && n++ < 5' "$TMP/put.out" >&2
    die "only $n of $TAGS manifest PUTs answered 201"
}
for ref in 1.0 t1 "t$TAGS"; do
    got=$(manifest_hex "$REG/v2/library/small/manifests/$ref")
    [[ $got == "$SMALL_MANIFEST_HEX" ]] || die "registry serves a different manifest for small:$ref ($got)"
done

# === 2. pin key and signed pin file ===

log "signing a pin file: $IMAGE tags 1.0, t1..t$TAGS -> $DIGEST"
"$PULLGATE_BIN" pins keygen --out "$TMP/pins" >"$TMP/keygen.out" 2>&1 || {
    cat "$TMP/keygen.out" >&2
    die "pullgate pins keygen failed"
}
jq -n --arg image "$IMAGE" --arg d "$DIGEST" --argjson n "$TAGS" \
    --arg expires "$(date -u -d '+7 days' +%Y-%m-%dT%H:%M:%SZ)" \
    '{expires: $expires,
      images: {($image): {tags: ({"1.0": $d} + ([range(1; $n + 1) | {key: "t\(.)", value: $d}] | from_entries))}}}' \
    >"$TMP/pins-input.json"
"$PULLGATE_BIN" pins sign --key "$TMP/pins.key" "$TMP/pins-input.json" >"$TMP/pins.json.new" 2>"$TMP/sign.err" || {
    cat "$TMP/sign.err" >&2
    die "pullgate pins sign failed"
}
mv "$TMP/pins.json.new" "$TMP/pins.json"
PINNED=$(jq --arg image "$IMAGE" '.signed.images[$image].tags | length' "$TMP/pins.json")
((PINNED == TAGS + 1)) || die "the signed pin file pins $PINNED tags, not $((TAGS + 1))"

# === 3. pullgate with the gate off and enforcing ===

# start_pullgate NAME MODE LOG_FILTER: writes NAME.toml, checks it, starts pullgate with its
# own port, audit file (audit-NAME.jsonl) and log (pullgate-NAME.log); sets PORT_/PID_/URL_NAME.
# Both modes name the same trust source, so the only difference is the rule's mode.
declare -A PORT_ PID_ URL_
start_pullgate() {
    local name=$1 mode=$2 filter=$3 port pid
    free_port port
    cat >"$TMP/$name.toml" <<EOF
[server]
listen = "127.0.0.1:$port"

[audit]
path = "$TMP/audit-$name.jsonl"

[[registry]]
name = "docker.io"
url = "$REG"
default = true

[[trust]]
name = "pins"
kind = "pins"
file = "$TMP/pins.json"
keys = ["$TMP/pins.pub"]

[[rule]]
name = "all"
images = ["**"]
mode = "$mode"
trust = ["pins"]

[typosquat]
mode = "off"
EOF
    "$PULLGATE_BIN" check-config --config "$TMP/$name.toml" >"$TMP/check-config-$name.out" 2>&1 || {
        cat "$TMP/check-config-$name.out" >&2
        die "pullgate check-config rejected the $name config"
    }
    grep -q "pins (pins): .*version" "$TMP/check-config-$name.out" || {
        cat "$TMP/check-config-$name.out" >&2
        die "check-config does not show the pin file loaded for $name"
    }
    PULLGATE_LOG=$filter "$PULLGATE_BIN" serve --config "$TMP/$name.toml" >"$TMP/pullgate-$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" "$pid" "pullgate ($name)"
    PORT_[$name]=$port PID_[$name]=$pid URL_[$name]=http://127.0.0.1:$port
    log "pullgate $name (mode $mode) on ${URL_[$name]} (pid $pid, PULLGATE_LOG=$filter)"
}
start_pullgate off off "$PG_LOG"
start_pullgate enforce enforce "$PG_LOG"

declare -A BASE=([direct]=$REG [off]=${URL_[off]} [enforce]=${URL_[enforce]})
declare -A PG_PID=([direct]="" [off]=${PID_[off]} [enforce]=${PID_[enforce]})

# status URL: the HTTP status of a manifest GET.
status() { curl -s --max-time 30 -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" "$1" || true; }

# The same manifest bytes through every path; the first request to enforce warms its verdict
# cache (and every path's connections and pools).
for t in "${TARGETS[@]}"; do
    for _ in 1 2 3; do
        got=$(manifest_hex "${BASE[$t]}$MANIFEST_PATH")
        [[ $got == "$SMALL_MANIFEST_HEX" ]] || die "$t serves a different small manifest ($got)"
    done
done
# The gate does gate: an image the pin file does not list is refused by enforce only.
code=$(status "${URL_[enforce]}/v2/library/unpinned/manifests/1.0")
[[ $code == 403 ]] || die "enforce answered $code, not 403, for the unpinned image"
code=$(status "${URL_[off]}/v2/library/unpinned/manifests/1.0")
[[ $code == 200 ]] || die "off answered $code, not 200, for the unpinned image"
first=$(head -n 1 "$TMP/audit-enforce.jsonl" | jq -r '"\(.cache) \(.decision)"')
[[ $first == "miss allow" ]] || die "the first enforce audit record says '$first', not 'miss allow'"

# === 4. manifest GET at 1, 16, 64 connections ===

# audit_window FILE FROM TO: records FROM+1..TO of an audit log (awk reads to the end, so no
# early close of the pipe trips pipefail).
audit_window() { awk -v a="$2" -v b="$3" 'NR > a && NR <= b' "$1"; }
# audit_summary FILE FROM TO -> "records hit_allow": how many records the window has, and how
# many of them say cache hit and decision allow.
audit_summary() {
    audit_window "$@" |
        jq -r '"\(.cache) \(.decision)"' |
        awk '{ n++ } $0 == "hit allow" { h++ } END { printf "%d %d\n", n, h }'
}
# audit_kinds FILE FROM TO -> "cache decision: count, ..." of those records, for the report.
audit_kinds() {
    audit_window "$@" |
        jq -r '"\(.cache // "null")/\(.decision)"' | sort | uniq -c |
        awk '{ printf "%s%s=%d", (NR > 1 ? " " : ""), $2, $1 }'
}

# Per target and concurrency: per-round values (space-separated lists), pooled ticks and counts.
declare -A L_RPS L_P50 L_P99 L_N L_PT REQS BAD SERR PTICKS RTICKS AREC AHIT AKINDS
for c in $CONNS; do
    for t in "${TARGETS[@]}"; do
        REQS[$t,$c]=0 BAD[$t,$c]=0 SERR[$t,$c]=0 PTICKS[$t,$c]=0 RTICKS[$t,$c]=0 AREC[$t,$c]=0 AHIT[$t,$c]=0
    done
done
BROKEN=0
for ((round = 1; round <= ROUNDS; round++)); do
    # Alternate the order of off and enforce between rounds, so drifting load hits both alike.
    if ((round % 2)); then order=(direct off enforce); else order=(direct enforce off); fi
    for c in $CONNS; do
        threads=$((c < 2 ? c : 2))
        for t in "${order[@]}"; do
            if [[ $t == enforce ]]; then
                # Keep the verdict warm (its time to live is 5 minutes): one request first.
                got=$(manifest_hex "${BASE[$t]}$MANIFEST_PATH")
                [[ $got == "$SMALL_MANIFEST_HEX" ]] || die "enforce serves a different small manifest ($got)"
            fi
            log "manifest GET: $t, $c connection(s), $DURATION (round $round/$ROUNDS)"
            out=$TMP/wrk-$t-$c-$round.txt
            audit=$TMP/audit-$t.jsonl
            a0=0
            [[ $t != direct ]] && a0=$(wc -l <"$audit")
            p0=$(cpu_ticks ${PG_PID[$t]})
            r0=$(cpu_ticks "$REG_PID")
            bounded timeout -k 5 $((DUR_S + 30)) wrk -t"$threads" -c"$c" -d"$DURATION" --timeout 10s --latency \
                -H "Accept: $ACCEPT" "${BASE[$t]}$MANIFEST_PATH" >"$out" 2>&1 || {
                cat "$out" >&2
                die "wrk against $t failed"
            }
            p1=$(cpu_ticks ${PG_PID[$t]})
            r1=$(cpu_ticks "$REG_PID")
            read -r rps p50 p99 n bad serr < <(parse_wrk "$out")
            [[ -n $rps && ${n:-0} -gt 0 ]] || {
                cat "$out" >&2
                die "cannot read wrk's output"
            }
            L_RPS[$t,$c]+="$rps " L_P50[$t,$c]+="$p50 " L_P99[$t,$c]+="$p99 "
            L_N[$t,$c]+="$n " L_PT[$t,$c]+="$((p1 - p0)) "
            REQS[$t,$c]=$((REQS[$t,$c] + n))
            BAD[$t,$c]=$((BAD[$t,$c] + bad)) SERR[$t,$c]=$((SERR[$t,$c] + serr))
            PTICKS[$t,$c]=$((PTICKS[$t,$c] + p1 - p0)) RTICKS[$t,$c]=$((RTICKS[$t,$c] + r1 - r0))
            if ((bad + serr > 0)); then
                log "WARNING: $t at $c connections: $bad non-2xx responses, $serr socket errors"
                BROKEN=1
            fi
            if [[ $t != direct ]]; then
                # Requests wrk gave up on at the end may still be finishing: let them write.
                sleep 0.5
                a1=$(wc -l <"$audit")
                read -r arec ahit < <(audit_summary "$audit" "$a0" "$a1")
                AREC[$t,$c]=$((AREC[$t,$c] + arec)) AHIT[$t,$c]=$((AHIT[$t,$c] + ahit))
                AKINDS[$t,$c]=$(audit_kinds "$audit" "$a0" "$a1")
                ((arec >= n)) || {
                    log "WARNING: $t at $c connections: $arec audit records for $n requests"
                    BROKEN=1
                }
                if [[ $t == enforce ]] && ((ahit != arec)); then
                    log "WARNING: enforce at $c connections: only $ahit of $arec audit records say cache hit + allow (${AKINDS[$t,$c]})"
                    BROKEN=1
                fi
            fi
        done
    done
done

# Aggregates: the median of the rounds' req/s, p50 and p99; CPU pooled over all rounds.
median_of() { tr ' ' '\n' <<<"$1" | awk 'NF' | stats | awk '{ print $2 }'; }
declare -A RPS P50 P99 PCPU RCPU
for c in $CONNS; do
    for t in "${TARGETS[@]}"; do
        RPS[$t,$c]=$(median_of "${L_RPS[$t,$c]}")
        P50[$t,$c]=$(median_of "${L_P50[$t,$c]}")
        P99[$t,$c]=$(median_of "${L_P99[$t,$c]}")
        PCPU[$t,$c]=$(calc "${PTICKS[$t,$c]} * 1000000 / $CLK_TCK / ${REQS[$t,$c]}" 1)
        RCPU[$t,$c]=$(calc "${RTICKS[$t,$c]} * 1000000 / $CLK_TCK / ${REQS[$t,$c]}" 1)
    done
done

# === 5. cold verification: one request per pinned tag, each a new verdict-cache key ===

start_pullgate cold enforce "$PG_DEBUG_LOG"
BASE[cold]=${URL_[cold]}

# batch_config URL_BASE OUT: 1.0 first (opens the connection, not counted), then t1..tN.
batch_config() {
    {
        echo "header = \"Accept: $ACCEPT\""
        echo "url = \"$1/v2/library/small/manifests/1.0\""
        echo "output = \"/dev/null\""
        for ((i = 1; i <= TAGS; i++)); do
            echo "url = \"$1/v2/library/small/manifests/t$i\""
            echo "output = \"/dev/null\""
        done
    } >"$2"
}
# The cold pullgate's first request (1.0) also opens its pool to the registry.
got=$(manifest_hex "${BASE[cold]}$MANIFEST_PATH")
[[ $got == "$SMALL_MANIFEST_HEX" ]] || die "cold serves a different small manifest ($got)"
verified_lines() { grep -c 'pullgate::server::gate: verified ' "$TMP/pullgate-cold.log" || true; }
V0=$(verified_lines)
((V0 == 1)) || die "expected 1 'verified' debug line after the first request, found $V0 (is the gate's debug log on?)"
A0=$(wc -l <"$TMP/audit-cold.jsonl")

# Passes: cold (every tag verified), warm (the same again, from the cache), and for comparison
# the same requests through pullgate off and to the registry directly.
E2E_PASSES=(cold warm off direct)
declare -A E2E_URL=([cold]=${BASE[cold]} [warm]=${BASE[cold]} [off]=${BASE[off]} [direct]=$REG)
declare -A E2E
for p in "${E2E_PASSES[@]}"; do
    log "tags t1..t$TAGS: $p pass"
    batch_config "${E2E_URL[$p]}" "$TMP/batch-$p.curl"
    curl_batch "$TMP/batch-$p.curl" "$TMP/batch-$p.out"
    tail -n +2 "$TMP/batch-$p.out" >"$TMP/batch-$p.tags"
    n=$(awk '$1 == 200' "$TMP/batch-$p.tags" | wc -l)
    ((n == TAGS)) || {
        awk '$1 != 200 && n++ < 5' "$TMP/batch-$p.tags" >&2
        die "$p pass: only $n of $TAGS tag requests answered 200"
    }
    # seconds -> ms
    E2E[$p]=$(awk '{ printf "%.3f\n", $2 * 1000 }' "$TMP/batch-$p.tags" | stats)
    if [[ $p == cold ]]; then
        V1=$(verified_lines)
        A1=$(wc -l <"$TMP/audit-cold.jsonl")
    fi
done
A2=$(wc -l <"$TMP/audit-cold.jsonl")

# The gate's own measurement of each cold verification (src/server/gate.rs).
VERIFIED=$((V1 - V0))
((VERIFIED == TAGS)) || die "the cold pass logged $VERIFIED 'verified' lines, not $TAGS"
grep 'pullgate::server::gate: verified ' "$TMP/pullgate-cold.log" | tail -n "$TAGS" |
    grep -o 'elapsed_us=[0-9]*' | cut -d= -f2 >"$TMP/verify-us.txt"
read -r V_N V_MED V_P99 V_MAX < <(stats <"$TMP/verify-us.txt")
((V_N == TAGS)) || die "found elapsed_us on $V_N of $TAGS 'verified' lines"

# The audit log agrees: the cold pass verified (miss), the warm pass used the cache (hit).
# Each pass is 1.0 (a hit, it was warmed) and then t1..tN.
COLD_KINDS=$(audit_kinds "$TMP/audit-cold.jsonl" "$A0" "$A1")
WARM_KINDS=$(audit_kinds "$TMP/audit-cold.jsonl" "$A1" "$A2")
[[ $COLD_KINDS == "hit/allow=1 miss/allow=$TAGS" ]] || die "cold pass audit records: $COLD_KINDS"
[[ $WARM_KINDS == "hit/allow=$((TAGS + 1))" ]] || die "warm pass audit records: $WARM_KINDS"

kill -0 "${PID_[off]}" 2>/dev/null && kill -0 "${PID_[enforce]}" 2>/dev/null ||
    die "a pullgate died during the benchmark"
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# === 6. report ===

TC=$TARGET_CONNS
# Cost ratios enforce/off: time per request at saturation (inverse req/s) and pullgate CPU.
declare -A COST_RPS COST_CPU
for c in $CONNS; do
    COST_RPS[$c]=$(calc "${RPS[off,$c]} / ${RPS[enforce,$c]}")
    COST_CPU[$c]=$(calc "${PCPU[enforce,$c]} / ${PCPU[off,$c]}")
done
RPS_OK=$(pass "${COST_RPS[$TC]} < 1.05")
CPU_OK=$(pass "${COST_CPU[$TC]} < 1.05")
pct() { awk "BEGIN { printf \"%+.1f\", ($1 - 1) * 100 }"; }
read -r _ E_COLD_MED E_COLD_P99 E_COLD_MAX <<<"${E2E[cold]}"
read -r _ E_WARM_MED E_WARM_P99 E_WARM_MAX <<<"${E2E[warm]}"
E_DIFF_US=$(calc "($E_COLD_MED - $E_WARM_MED) * 1000" 0)

echo
echo "pullgate trust-gate benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $LOADAVG_START at start, $LOADAVG_END at end"
echo "client, registry and pullgate share this machine: compare within one run, not across machines."
echo "off: rule mode \"off\"; enforce: mode \"enforce\", trust [\"pins\"], warm verdict cache. PULLGATE_LOG=$PG_LOG, audit to a file."
echo
echo "Manifest GET $MANIFEST_PATH  (wrk, $DURATION per run, $ROUNDS round(s); CPU = CPU time per request)"
printf '%6s  %-8s %9s %9s %9s %7s %15s %16s  %s\n' conns target 'req/s' 'p50 ms' 'p99 ms' errors 'pullgate CPU us' 'registry CPU us' 'audit (cache/decision=records)'
for c in $CONNS; do
    for t in "${TARGETS[@]}"; do
        if [[ $t == direct ]]; then pc=- ak=-; else pc=${PCPU[$t,$c]} ak=${AKINDS[$t,$c]}; fi
        printf '%6s  %-8s %9.0f %9.3f %9.3f %7d %15s %16s  %s\n' "$c" "$t" "${RPS[$t,$c]}" "${P50[$t,$c]}" "${P99[$t,$c]}" \
            $((BAD[$t,$c] + SERR[$t,$c])) "$pc" "${RCPU[$t,$c]}" "$ak"
    done
done
echo
echo "enforce vs off (cost ratio > 1 = enforce costs more)"
printf '%6s  %22s %26s  %s\n' conns 'req/s off/enforce' 'pullgate CPU enforce/off' 'req/s enforce/direct'
for c in $CONNS; do
    printf '%6s  %14s (%6s%%) %18s (%6s%%)  %s\n' "$c" "${COST_RPS[$c]}" "$(pct "${COST_RPS[$c]}")" \
        "${COST_CPU[$c]}" "$(pct "${COST_CPU[$c]}")" "$(calc "${RPS[enforce,$c]} / ${RPS[direct,$c]}")"
done
echo
echo "Cold verification: $TAGS requests t1..t$TAGS to a fresh enforce pullgate (PULLGATE_LOG=$PG_DEBUG_LOG)"
echo "  gate verification (elapsed_us of the 'verified' debug lines): median $V_MED us, p99 $V_P99 us, max $V_MAX us (n=$V_N)"
echo "  end-to-end latency (curl time_total, one kept-alive connection, sequential):"
printf '    %-8s %9s %9s %9s   %s\n' pass 'median ms' 'p99 ms' 'max ms' ''
declare -A E2E_NOTE=([cold]="every request verified (audit: miss)" [warm]="the same requests again (audit: hit)"
    [off]="pullgate with the gate off" [direct]="the registry itself")
for p in "${E2E_PASSES[@]}"; do
    read -r _ med p99 max <<<"${E2E[$p]}"
    printf '    %-8s %9.3f %9.3f %9.3f   %s\n' "$p" "$med" "$p99" "$max" "${E2E_NOTE[$p]}"
done
echo "  cold - warm median: $E_DIFF_US us"
echo
echo "Targets (information only):"
echo "  warm enforce < 5% more than off at $TC connections, req/s ........... $RPS_OK (off/enforce = ${COST_RPS[$TC]}, $(pct "${COST_RPS[$TC]}")%)"
echo "  warm enforce < 5% more than off at $TC connections, pullgate CPU .... $CPU_OK (enforce/off = ${COST_CPU[$TC]}, $(pct "${COST_CPU[$TC]}")%)"

# The same as JSON.
mkdir -p "$ROOT/benches/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULT=$ROOT/benches/results/gate-$STAMP.json
nums() { tr ' ' '\n' <<<"$1" | awk 'NF' | jq -s -c .; }
stats_json() {
    read -r n med p99 max <<<"$1"
    jq -nc --argjson n "$n" --argjson med "$med" --argjson p99 "$p99" --argjson max "$max" \
        '{count: $n, median: $med, p99: $p99, max: $max}'
}
manifest_json=$(
    for c in $CONNS; do
        for t in "${TARGETS[@]}"; do
            pc=${PCPU[$t,$c]} arec=${AREC[$t,$c]} ahit=${AHIT[$t,$c]} ak=${AKINDS[$t,$c]:-}
            [[ $t == direct ]] && pc=null arec=null ahit=null
            jq -nc --arg t "$t" --argjson c "$c" --argjson rps "${RPS[$t,$c]}" --argjson p50 "${P50[$t,$c]}" \
                --argjson p99 "${P99[$t,$c]}" --argjson n "${REQS[$t,$c]}" --argjson bad "${BAD[$t,$c]}" \
                --argjson serr "${SERR[$t,$c]}" --argjson pc "$pc" --argjson rc "${RCPU[$t,$c]}" \
                --argjson pt "${PTICKS[$t,$c]}" --argjson rt "${RTICKS[$t,$c]}" \
                --argjson rrps "$(nums "${L_RPS[$t,$c]}")" --argjson rp50 "$(nums "${L_P50[$t,$c]}")" \
                --argjson rp99 "$(nums "${L_P99[$t,$c]}")" --argjson rn "$(nums "${L_N[$t,$c]}")" \
                --argjson rpt "$(nums "${L_PT[$t,$c]}")" \
                --argjson arec "$arec" --argjson ahit "$ahit" --arg ak "$ak" \
                '{conns: $c, target: $t, requests_per_s: $rps, p50_ms: $p50, p99_ms: $p99, requests: $n,
                  non_2xx: $bad, socket_errors: $serr, pullgate_cpu_us_per_request: $pc,
                  registry_cpu_us_per_request: $rc, pullgate_cpu_ticks: (if $t == "direct" then null else $pt end),
                  registry_cpu_ticks: $rt,
                  rounds: {requests_per_s: $rrps, p50_ms: $rp50, p99_ms: $rp99, requests: $rn,
                           pullgate_cpu_ticks: (if $t == "direct" then null else $rpt end)},
                  audit: (if $t == "direct" then null
                          else {records: $arec, cache_hit_allow: $ahit, kinds_last_round: $ak} end)}'
        done
    done | jq -s .
)
ratios_json=$(
    for c in $CONNS; do
        jq -nc --argjson c "$c" --argjson r "${COST_RPS[$c]}" --argjson p "${COST_CPU[$c]}" \
            '{conns: $c, rps_off_over_enforce: $r, pullgate_cpu_enforce_over_off: $p}'
    done | jq -s .
)
e2e_json=$(
    for p in "${E2E_PASSES[@]}"; do
        jq -nc --arg p "$p" --argjson s "$(stats_json "${E2E[$p]}")" '{($p): $s}'
    done | jq -s add
)
repo_state
jq -n \
    --arg date "$STAMP" --arg commit "$COMMIT" --argjson dirty "$DIRTY" \
    --argjson nproc "$(nproc)" --arg kernel "$(uname -r)" \
    --arg load_start "$LOADAVG_START" --arg load_end "$LOADAVG_END" \
    --arg wrk "$({ wrk --version 2>&1 || true; } | awk 'NR == 1 { print $2 }')" \
    --arg duration "$DURATION" --arg conns "$CONNS" --argjson tc "$TC" --argjson rounds "$ROUNDS" \
    --argjson tags "$TAGS" --arg pg_log "$PG_LOG" --arg pg_debug_log "$PG_DEBUG_LOG" \
    --arg digest "$DIGEST" \
    --argjson manifest "$manifest_json" --argjson ratios "$ratios_json" \
    --argjson verify "$(stats_json "$V_N $V_MED $V_P99 $V_MAX")" --argjson e2e "$e2e_json" \
    --argjson diff "$E_DIFF_US" \
    --argjson cost_rps "${COST_RPS[$TC]}" --argjson cost_cpu "${COST_CPU[$TC]}" \
    --arg rps_ok "$RPS_OK" --arg cpu_ok "$CPU_OK" \
    '{
        date: $date, commit: $commit, worktree_dirty: ($dirty > 0),
        host: {nproc: $nproc, kernel: $kernel, loadavg_start: $load_start, loadavg_end: $load_end, wrk: $wrk},
        params: {duration: $duration, conns: ($conns | split(" ") | map(select(. != "") | tonumber)),
                 target_conns: $tc, rounds: $rounds, tags: $tags,
                 manifest_path: "/v2/library/small/manifests/1.0", manifest_digest: $digest,
                 pullgate_log: $pg_log, cold_pullgate_log: $pg_debug_log},
        manifest: $manifest,
        enforce_vs_off: $ratios,
        cold_verification: {verify_us: $verify, end_to_end_ms: $e2e, cold_minus_warm_median_us: $diff},
        targets: [
            {name: "warm enforce < 5% more than off at \($tc) connections, req/s",
             value: $cost_rps, measure: "req/s off / req/s enforce", result: $rps_ok},
            {name: "warm enforce < 5% more than off at \($tc) connections, pullgate CPU per request",
             value: $cost_cpu, measure: "CPU per request enforce / off", result: $cpu_ok}
        ]
    }' >"$RESULT"
echo
echo "results written to ${RESULT#"$ROOT"/}"

if ((BROKEN)); then
    die "the manifest runs had failed requests or a cold verdict cache (see the warnings above)"
fi
