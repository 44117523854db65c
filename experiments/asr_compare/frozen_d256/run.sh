#!/usr/bin/env bash
# Issue 11, item 5, on the current encoder: MHA, MTLA s = 2, MLA and MTLA s = 4 decoders
# (VARIANTS=mha,mtla2 for the first two only) trained
# on the frozen speech encoder of models/asr (config.toml), 2 seeds each, identical settings, on
# the first 12000 training utterances of ../../asr_recipe's offline Debian corpus and its dev and
# test sets (test sentences never in training; the encoder trained on all 34093), speed-perturbed;
# beam 5 on the 500 test utterances. The two seeds train concurrently, one thread each; the
# variants one after another. The corpus (34 min on 2 cores; a larger --n extends it, the
# selection is nested):
#   mtla-st corpus build --out ~/corpora/deen-9k --n 13000 --n-dev 500 --n-test 500 \
#     --max-words 20 --engines flite,festival,freetts --install-tools --jobs 2
#   CORPUS=$HOME/corpora/deen-9k bash experiments/asr_compare/frozen_d256/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export CORPUS=${CORPUS:-$HOME/corpora/deen-9k} SEEDS=${SEEDS:-1,2} PARALLEL_SEEDS=${PARALLEL_SEEDS-1}
BIN=${BIN:-target/release/mtla-st}
NAME=asr_compare/frozen_d256
[ -f "$CORPUS/train.tsv" ] || { echo "no corpus in $CORPUS: build it as experiments/asr_recipe/run.sh does" >&2; exit 2; }
BIN=$BIN bash experiments/compare.sh $NAME mha,mtla2,mla,mtla4
# Logs kept here: validations and every 10th update; the test reports.
mkdir -p experiments/$NAME/logs
for run in runs/$NAME/*-seed*; do
  name=$(basename "$run")
  grep -E 'valid_|"update":[0-9]*0,|"updates"' "$run/train_log.jsonl" > "experiments/$NAME/logs/$name.jsonl"
  # eval-test (decoder alone) -> NAME.test.json; eval-test-ctc0.2 (a TAG=_ctc0.2 decoding) -> NAME.test_ctc0.2.json
  for report in "$run"/eval-test*/report.json; do
    suffix=$(basename "$(dirname "$report")"); suffix=${suffix#eval-test}
    cp "$report" "experiments/$NAME/logs/$name.test${suffix/-/_}.json"
  done
done
"$BIN" plot curves --runs runs/$NAME --out experiments/$NAME
