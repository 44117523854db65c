#!/usr/bin/env bash
# Issue 11, item 5: MHA, MLA and MTLA (s = 2, 4) decoders trained on the shipped ASR encoder
# (models/asr), 2 seeds each, identical settings, on the 9k offline Debian corpus of
# ../asr_recipe (test sentences never in training); beam 5 on its 500 test utterances.
#   CORPUS=$HOME/corpora/deen-9k bash experiments/asr_compare/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CORPUS=${CORPUS:-$HOME/corpora/deen-9k} SEEDS=${SEEDS:-1,2}
BIN=${BIN:-target/release/mtla-st}
[ -f "$CORPUS/train.tsv" ] || { echo "no corpus in $CORPUS: build it as experiments/asr_recipe/run.sh does" >&2; exit 2; }
BIN=$BIN bash experiments/compare.sh asr_compare mha,mtla2,mla,mtla4
"$BIN" plot curves --runs runs/asr_compare --out experiments/asr_compare
