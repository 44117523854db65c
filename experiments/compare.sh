#!/usr/bin/env bash
# Shared by the quality experiments: trains and evaluates attention variants of one experiment
# (experiments/NAME/config.toml) with identical settings on the offline Debian En-De corpus.
#   CORPUS=DIR bash experiments/compare.sh NAME DEFAULT_VARIANTS [--set eval.KEY=VALUE ...]
#   (VARIANTS=... overrides; the --set arguments change the decoding of the final comparison,
#   e.g. --set eval.ctc_weight=0.2, and TAG=_ctc0.2 names its files comparison_ctc0.2.md and
#   results_ctc0.2.json, so that finished runs can be decoded several ways;
#   SEEDS=1,2 trains every variant once per seed and adds each variant's mean and range;
#   PARALLEL_SEEDS=1 trains the seeds concurrently, one process of one thread each, which on this
#   2-core CPU gives 1.39x the updates/s of one 2-thread process (4.31 vs 3.10, ASR, 200 updates);
#   the seeds' processes only train (`compare --train-only`); the joint comparison then reuses
#   the finished runs and decodes them on a quiet machine)
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=$1
CORPUS=${CORPUS:-$HOME/corpora/debian-en-de-5k}
BIN=${BIN:-target/release/mtla-st}
VARIANTS=${VARIANTS:-$2}
shift 2
decoding=("$@")
TAG=${TAG:-}
[ -x "$BIN" ] || cargo build --release -p mtla-st
if [ ! -f "$CORPUS/train.tsv" ]; then
  # 4000 / 500 / 500 utterances, ~5 h of audio; ~16 min on 2 cores (TTS packages needed, see data/README.md).
  "$BIN" corpus build --out "$CORPUS" --n 5000 --n-dev 500 --n-test 500 --jobs 2
fi
set_data=(--set "data.train=\"$CORPUS/train.tsv\"" --set "data.valid=\"$CORPUS/dev.tsv\""
  --set "data.test=\"$CORPUS/test.tsv\"")
if [ -n "${PARALLEL_SEEDS:-}" ] && [ -n "${SEEDS:-}" ]; then
  pids=()
  for seed in ${SEEDS//,/ }; do
    mkdir -p "runs/$NAME/seed$seed"
    RAYON_NUM_THREADS=1 "$BIN" compare --config "experiments/$NAME/config.toml" --variants "$VARIANTS" \
      --seeds "$seed" --out "runs/$NAME/seed$seed" --train-only "${set_data[@]}" \
      > "runs/$NAME/seed$seed.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  # The joint comparison names its runs VARIANT-seedN: link them to the finished ones.
  for seed in ${SEEDS//,/ }; do
    for variant in ${VARIANTS//,/ }; do
      ln -sfn "seed$seed/$variant" "runs/$NAME/$variant-seed$seed"
    done
  done
fi
"$BIN" compare --config "experiments/$NAME/config.toml" --variants "$VARIANTS" ${SEEDS:+--seeds "$SEEDS"} \
  --out "runs/$NAME" --average-best 5 "${set_data[@]}" ${decoding[@]+"${decoding[@]}"} \
  | tee "experiments/$NAME/comparison$TAG.md"
cp "runs/$NAME/comparison.json" "experiments/$NAME/results$TAG.json"
