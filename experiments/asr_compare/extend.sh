#!/usr/bin/env bash
# Trains finished asr_compare runs on, exactly resumed, to UPDATES (default 6000) under
# runs/asr_compare_ext/VARIANT-seedN, two at a time (one thread each, as PARALLEL_SEEDS does), then
# averages each run's 3 best checkpoints and decodes the 500 test utterances with beam 5, with the
# decoder alone and jointly with the CTC head (weight 0.2). Reports land in logs/6000/.
#   CORPUS=$HOME/corpora/deen-9k bash experiments/asr_compare/extend.sh mha-seed2 mtla2-seed2 ...
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${CORPUS:-$HOME/corpora/deen-9k}
BIN=${BIN:-target/release/mtla-st}
UPDATES=${UPDATES:-6000}
EXT=runs/asr_compare_ext
LOGS=experiments/asr_compare/logs/6000
mkdir -p "$EXT" "$LOGS"
train() {
  local name=$1 run=$EXT/$1
  if [ ! -d "$run" ]; then
    cp -r "runs/asr_compare/${name#*-}/${name%-seed*}" "$run"
    # Runs trained before 7958459 stored encoder_init relative to the working directory.
    sed -i "s|^encoder_init = \"experiments/asr_compare/../../|encoder_init = \"$PWD/|" "$run/config.toml"
  fi
  RAYON_NUM_THREADS=1 "$BIN" train --config "$run/config.toml" --out "$run" --resume \
    --set train.max_updates="$UPDATES" > "$EXT/$name.log" 2>&1 || { tail -3 "$EXT/$name.log"; return 1; }
}
names=("$@")
for ((i = 0; i < ${#names[@]}; i += 2)); do
  pids=()
  for name in "${names[@]:i:2}"; do
    train "$name" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
done
for name in "${names[@]}"; do
  run=$EXT/$name
  "$BIN" average --checkpoints "$run" --best 3 --out "$run/checkpoints/avg3.safetensors"
  for w in 0 0.2; do
    "$BIN" eval --checkpoint "$run/checkpoints/avg3.safetensors" --manifest "$CORPUS/test.tsv" --asr \
      --beam 5 --ctc-weight "$w" --out "$run/eval-test-avg3-ctc$w" | grep -E "WER|tokens/s"
    cp "$run/eval-test-avg3-ctc$w/report.json" "$LOGS/$name.avg3.ctc$w.test.json"
  done
  grep -E 'valid_|"update":[0-9]*00,|"updates"' "$run/train_log.jsonl" > "$LOGS/$name.jsonl"
done
