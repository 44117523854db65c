#!/usr/bin/env bash
# Experiment 3: ASR (English transcripts) with MHA and MTLA (s = 2), identical settings, on the offline
# Debian En-De corpus, evaluated with beam search on its test split.
#   CORPUS=DIR bash experiments/asr_quality/run.sh      (builds the corpus there if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${CORPUS:-$HOME/corpora/debian-en-de-5k}
BIN=${BIN:-target/release/mtla-st}
VARIANTS=${VARIANTS:-mha,mtla2}
[ -x "$BIN" ] || cargo build --release -p mtla-st
if [ ! -f "$CORPUS/train.tsv" ]; then
  # 4000 / 500 / 500 utterances, ~5 h of audio; ~16 min on 2 cores (TTS packages needed, see data/README.md).
  "$BIN" corpus build --out "$CORPUS" --n 5000 --n-dev 500 --n-test 500 --jobs 2
fi
"$BIN" compare --config experiments/asr_quality/config.toml --variants "$VARIANTS" \
  --out runs/asr_quality --average-best 5 \
  --set "data.train=\"$CORPUS/train.tsv\"" --set "data.valid=\"$CORPUS/dev.tsv\"" --set "data.test=\"$CORPUS/test.tsv\"" \
  | tee experiments/asr_quality/comparison.md
cp runs/asr_quality/comparison.json experiments/asr_quality/results.json
