#!/usr/bin/env bash
# Builds the libFuzzer targets with clang against an instrumented engine
# (-Dfuzzing=true) in their own build folder and runs each for a fixed time
# from its seed corpus. Fails on any crash, leak, sanitizer report, timeout
# or out-of-memory; the input that did it is kept in $builddir/fuzz-artifacts.
# Usage: tools/run-fuzz.sh [SECONDS per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
builddir=build-fuzz
targets=(fuzz-yaml fuzz-playbook fuzz-template)

if [ ! -d "$builddir" ]; then
        log="$(mktemp)"
        CC=clang meson setup "$builddir" --buildtype=debugoptimized -Dfuzzing=true \
                -Db_lundef=false -Dgateway=disabled >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
        rm -f "$log"
fi
meson compile -C "$builddir" "${targets[@]}"

seeds() {
        case "$1" in
        fuzz-yaml) echo tests/fuzz/corpus/yaml ;;
        fuzz-template) echo tests/fuzz/corpus/template ;;
        fuzz-playbook)
                echo tests/fuzz/corpus/playbook data/playbooks
                if [ -d ../shared/compat/playbooks ]; then echo ../shared/compat/playbooks; fi
                ;;
        esac
}

artifacts="$builddir/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
for t in "${targets[@]}"; do
        # New inputs go to a scratch folder first in the list: the seed
        # folders in the tree stay as they are.
        scratch="$(mktemp -d)"
        echo "== $t (${seconds}s)"
        # shellcheck disable=SC2046
        if ! "$builddir/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 \
                -max_len=131072 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
                "$scratch" $(seeds "$t") >"$artifacts/$t.log" 2>&1; then
                tail -n 60 "$artifacts/$t.log" >&2
                echo "$t: FAILED (log and input in $artifacts)" >&2
                status=1
        else
                grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$artifacts/$t.log" || true
        fi
        rm -rf "$scratch"
done
echo "== fuzz: ${#targets[@]} targets, $([ $status = 0 ] && echo none || echo some) failed"
exit $status
