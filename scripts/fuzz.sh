#!/usr/bin/env bash
# Fuzzes each rmx-io parser (npy, npz, safetensors, gguf) for SECONDS each (default 60).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). The working corpus
# grows in fuzz/corpus/<target>/ (ignored by git) from the committed seeds in
# fuzz/seeds/<target>/ (regenerate with scripts/fuzz_seeds.py); fuzz/dicts/<target>.dict
# lists tokens of the format. A crashing input lands in fuzz/artifacts/<target>/: copy it
# into crates/rmx-io/tests/regressions/<format>/, where `cargo test -p rmx-io` loads it on
# every run. Logs: fuzz/logs/<target>.log.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(npy npz safetensors gguf)

max_len() {
    case "$1" in
        npy | safetensors) echo 4096 ;;
        *) echo 16384 ;;
    esac
}

# -a: debug assertions and overflow checks, so arithmetic overflow is a crash too.
cargo +nightly fuzz build -a || exit 1
mkdir -p logs
failed=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== $t: ${SECONDS_EACH}s"
    cargo +nightly fuzz run -a "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1 -dict="dicts/$t.dict" \
        >"logs/$t.log" 2>&1
    rc=$?
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "logs/$t.log" | tail -1)
    echo "   ${runs:-no summary} (exit $rc; log fuzz/logs/$t.log)"
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        grep -E 'panicked|ERROR: |SUMMARY|Test unit written' "logs/$t.log" | head -8 | sed 's/^/   /'
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes in: ${failed[*]} (inputs under fuzz/artifacts/)"
    exit 1
fi
echo "no crashes"
