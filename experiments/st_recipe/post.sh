#!/usr/bin/env bash
# The comparison stages' evaluation (README, "d256_enc15_*"), after run.sh NAME: the run's 3 best
# checkpoints by dev accuracy averaged and stored in Q8_0 as models/st is, decoded on dev and test
# with models/st's search (beam 5, lenpen 1.5), each scored against models/st's own decode of the
# same set (paired bootstrap, 10000 resamples).
#   OUT=DIR LOGS=DIR bash experiments/st_recipe/post.sh NAME...
# Reports go to $LOGS/logs/NAME.avg3_q8.lenpen1.5.{dev,test}.json, p-values to
# $LOGS/logs/post.pvalues.txt (appended); models/st's decodes are kept in $OUT/shipped, their
# reports in $LOGS/logs/models_st_enc15.{dev,test}.post.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${CORPUS:-$HOME/corpora/deen-9k}
BIN=${BIN:-target/release/mtla-st}
OUT=${OUT:-runs/st_recipe}
LOGS=${LOGS:-experiments/st_recipe}
mkdir -p "$LOGS/logs"
# decode CHECKPOINT SET DIR: beam 5, lenpen 1.5 on $CORPUS/SET.tsv into DIR (hyp.txt, ref.txt,
# report.json).
decode() {
  "$BIN" eval --checkpoint "$1" --manifest "$CORPUS/$2.tsv" --beam 5 --lenpen 1.5 --out "$3" >/dev/null
}
for set in dev test; do
  [ -f "$OUT/shipped/$set/hyp.txt" ] || decode models/st/model.safetensors "$set" "$OUT/shipped/$set"
  cp "$OUT/shipped/$set/report.json" "$LOGS/logs/models_st_enc15.$set.post.json"
done
for NAME in "$@"; do
  run=$OUT/$NAME
  "$BIN" average --checkpoints "$run/checkpoints" --best 3 --out "$run/avg3.safetensors"
  "$BIN" average --inputs "$run/avg3.safetensors" --q8 --out "$run/avg3_q8.safetensors"
  for set in dev test; do
    decode "$run/avg3_q8.safetensors" "$set" "$run/avg3_q8.$set"
    cp "$run/avg3_q8.$set/report.json" "$LOGS/logs/$NAME.avg3_q8.lenpen1.5.$set.json"
    "$BIN" score --hyp "$run/avg3_q8.$set/hyp.txt" --ref "$run/avg3_q8.$set/ref.txt" \
      --baseline "$OUT/shipped/$set/hyp.txt" --resamples 10000 2>&1 >/dev/null | grep "^BLEU" \
      | sed "s/^/$NAME $set vs shipped: /" | tee -a "$LOGS/logs/post.pvalues.txt"
  done
done
