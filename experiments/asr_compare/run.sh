#!/usr/bin/env bash
# Issue 11, item 5: MHA, MLA and MTLA (s = 2, 4) decoders trained on the shipped ASR encoder
# (models/stages/asr_d128, shipped as models/asr until 2026-12-02), 2 seeds each, identical
# settings, on the 34k-utterance offline Debian corpus of
# ../asr_recipe (test sentences never in training); beam 5 on its 500 test utterances, with the
# decoder alone and jointly with the CTC head (comparison_ctc0.2.md). The two
# seeds train concurrently, one thread each (PARALLEL_SEEDS=, empty, trains them one by one).
#   CORPUS=$HOME/corpora/deen-9k bash experiments/asr_compare/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CORPUS=${CORPUS:-$HOME/corpora/deen-9k} SEEDS=${SEEDS:-1,2} PARALLEL_SEEDS=${PARALLEL_SEEDS-1}
BIN=${BIN:-target/release/mtla-st}
[ -f "$CORPUS/train.tsv" ] || { echo "no corpus in $CORPUS: build it as experiments/asr_recipe/run.sh does" >&2; exit 2; }
BIN=$BIN bash experiments/compare.sh asr_compare mha,mtla2,mla,mtla4
# The same runs decoded jointly with their CTC heads (weight 0.2, chosen on dev for that model).
BIN=$BIN TAG=_ctc0.2 PARALLEL_SEEDS= bash experiments/compare.sh asr_compare mha,mtla2,mla,mtla4 \
  --set eval.ctc_weight=0.2
# Logs kept here: validations and every 10th update; the test reports.
mkdir -p experiments/asr_compare/logs
for run in runs/asr_compare/*-seed*; do
  name=$(basename "$run")
  grep -E 'valid_|"update":[0-9]*0,|"updates"' "$run/train_log.jsonl" > "experiments/asr_compare/logs/$name.jsonl"
  cp "$run/eval-test/report.json" "experiments/asr_compare/logs/$name.test.json"
  cp "$run/eval-test-ctc0.2/report.json" "experiments/asr_compare/logs/$name.ctc0.2.test.json"
done
"$BIN" plot curves --runs runs/asr_compare --out experiments/asr_compare
