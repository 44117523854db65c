#!/usr/bin/env bash
# Issue 11's ST stage: the encoder from an ASR run of experiments/asr_recipe, then ST training.
#   CORPUS=DIR ASR=runs/asr_recipe/NAME bash experiments/st_recipe/run.sh [NAME [TRAIN ARGS...]]
# NAME base: encoder from $ASR; NAME scratch: the control, a fresh encoder (no ASR stage).
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${CORPUS:-$HOME/corpora/deen-9k}
BIN=${BIN:-target/release/mtla-st}
ASR=${ASR:-runs/asr_recipe/base}
NAME=${1:-base}
shift || true
init=(--set "model.encoder_init=\"$PWD/$ASR/checkpoints/best.safetensors\"")
[ "$NAME" = scratch ] && init=()
OUT=runs/st_recipe
mkdir -p "$OUT" experiments/st_recipe/logs
[ -x "$BIN" ] || cargo build --release -p mtla-st
resume=""
[ -f "$OUT/$NAME/checkpoints/state.json" ] && resume="--resume"
# shellcheck disable=SC2086
"$BIN" train --config experiments/st_recipe/config.toml --out "$OUT/$NAME" $resume "${init[@]}" "$@" \
  --set "data.train=\"$CORPUS/train.tsv\"" --set "data.valid=\"$CORPUS/dev.tsv\"" 2>&1 \
  | grep -v "^train epoch" | tee "$OUT/$NAME.console.txt"
"$BIN" eval --checkpoint "$OUT/$NAME/checkpoints/best.safetensors" --manifest "$CORPUS/test.tsv" \
  --beam 5 --out "$OUT/$NAME/eval-test" | tee "$OUT/$NAME.eval.txt"
cp "$OUT/$NAME/train_log.jsonl" "experiments/st_recipe/logs/$NAME.jsonl"
cp "$OUT/$NAME/eval-test/report.json" "experiments/st_recipe/logs/$NAME.test.json"
"$BIN" plot curves --runs "$OUT" --out experiments/st_recipe
