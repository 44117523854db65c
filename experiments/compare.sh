#!/usr/bin/env bash
# Shared by the quality experiments: trains and evaluates attention variants of one experiment
# (experiments/NAME/config.toml) with identical settings on the offline Debian En-De corpus.
#   CORPUS=DIR bash experiments/compare.sh NAME DEFAULT_VARIANTS   (VARIANTS=... overrides;
#   SEEDS=1,2 trains every variant once per seed and adds each variant's mean and range)
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=$1
CORPUS=${CORPUS:-$HOME/corpora/debian-en-de-5k}
BIN=${BIN:-target/release/mtla-st}
VARIANTS=${VARIANTS:-$2}
[ -x "$BIN" ] || cargo build --release -p mtla-st
if [ ! -f "$CORPUS/train.tsv" ]; then
  # 4000 / 500 / 500 utterances, ~5 h of audio; ~16 min on 2 cores (TTS packages needed, see data/README.md).
  "$BIN" corpus build --out "$CORPUS" --n 5000 --n-dev 500 --n-test 500 --jobs 2
fi
"$BIN" compare --config "experiments/$NAME/config.toml" --variants "$VARIANTS" ${SEEDS:+--seeds "$SEEDS"} \
  --out "runs/$NAME" --average-best 5 \
  --set "data.train=\"$CORPUS/train.tsv\"" --set "data.valid=\"$CORPUS/dev.tsv\"" --set "data.test=\"$CORPUS/test.tsv\"" \
  | tee "experiments/$NAME/comparison.md"
cp "runs/$NAME/comparison.json" "experiments/$NAME/results.json"
