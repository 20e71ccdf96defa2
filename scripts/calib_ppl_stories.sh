#!/usr/bin/env bash
# Perplexity of stories260k under rtn-w4, gptq-w4 (with and without --act-order) and awq-w4
# at group sizes 32 and 128, for three calibration sets. Evaluation and calibration texts are
# stories sampled from the float model (temperature 1, 200 tokens each) with disjoint seeds:
# evaluation 1000-1015 (as test/e2e/test_calibrated_quant.py), calibration A 1-24 (used as
# 32 x 128 tokens, as the test), calibration B 2000-2127 (128 x 128 and 64 x 256).
# Prints one line per artifact: scheme, group size, calibration, `perplexity: P over N tokens`.
#   bash scripts/calib_ppl_stories.sh [BIN_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/tools}")
WORK=${2:-$(mktemp -d)}
M=$PWD/models/stories260k
mkdir -p "$WORK" && cd "$WORK"
"$BIN/qlc" compile "$M" -o f32.so --quant none > /dev/null
sample() { for s in "$@"; do "$BIN/qlc-run" f32.so --prompt "Once upon a time" -n 200 \
  --temperature 1.0 --seed "$s"; echo; done; }
sample $(seq 1 24) > calib-a.txt
sample $(seq 2000 2127) > calib-b.txt
sample $(seq 1000 1015) > eval.txt
ppl() { "$BIN/qlc-run" "$1" --perplexity eval.txt --ctx 256 | tail -1; }
echo "none - - $(ppl f32.so)"
for g in 32 128; do
  "$BIN/qlc" compile "$M" -o x.so --quant rtn-w4 --group-size $g > /dev/null
  echo "rtn-w4 g$g - $(ppl x.so)"
  for c in "calib-a.txt 32 128" "calib-b.txt 128 128" "calib-b.txt 64 256"; do
    set -- $c
    for q in "gptq-w4" "gptq-w4 --act-order" "awq-w4"; do
      "$BIN/qlc" compile "$M" -o x.so --quant $q --group-size $g --calib "$1" \
        --calib-samples "$2" --calib-seqlen "$3" > /dev/null 2>&1
      echo "$q g$g $1:$2x$3 $(ppl x.so)"
    done
  done
done
