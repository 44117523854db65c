#!/usr/bin/env bash
# Issue 11's ASR recipe search: short runs of config.toml, one change each, on the offline Debian
# corpus; every run logs whether it listens (audio gain, greedy CTC WER) at each validation.
#   CORPUS=DIR bash experiments/asr_recipe/run.sh [ABLATION ...]     (default: base prefix_norm)
# A run that exists is resumed (exactly) rather than restarted; curves and logs land here.
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${CORPUS:-$HOME/corpora/deen-9k}
BIN=${BIN:-target/release/mtla-st}
[ -x "$BIN" ] || cargo build --release -p mtla-st
if [ ! -f "$CORPUS/train.tsv" ]; then
  # 8000 / 500 / 500 utterances of 3-20 words, recorded-voice engines only; ~25 min on 2 cores.
  "$BIN" corpus build --out "$CORPUS" --n 9000 --n-dev 500 --n-test 500 --max-words 20 \
    --engines flite,festival,freetts --install-tools --jobs 2
fi
ablation() {
  case "$1" in
    base) ;;
    prefix_norm) echo "--set model.decoder.prefix_norm=true" ;;
    ctc_only) echo "--set model.ctc_weight=1.0" ;;
    vocab1000) echo "--set model.vocab_size=1000" ;;
    mha) echo "--set model.decoder.attention.kind=mha" ;;
    # Stage 2: the shipped model (base, 29299 updates, listening) trained on with SpecAugment
    # (fairseq's LB policy: one frequency mask <= 27 bins, one time mask <= 100 frames) and a
    # fresh schedule peaking at 5e-4; its tokenizer, so the pieces stay the same.
    specaug) echo "--set train.init_from=\"../../models/asr/model.safetensors\"
      --set data.tokenizer=\"../../models/asr/tokenizer.json\" --set data.specaugment.freq_mask_n=1
      --set data.specaugment.time_mask_n=1 --set train.lr=5e-4 --set train.validate_every_updates=500
      --set train.max_updates=40000 --set train.time_limit_minutes=${TIME_LIMIT:-130}" ;;
    # Stage 3: the shipped model (base) trained on 4x the sentences (the corpus rebuilt with
    # --n 35093: 34093 training utterances, 31.9 h; dev/test unchanged); its tokenizer, a fresh
    # schedule peaking at 5e-4 over 1000 warm-up updates, no SpecAugment (stage 2: no gain).
    data34k) echo "--set train.init_from=\"../../models/asr/model.safetensors\"
      --set data.tokenizer=\"../../models/asr/tokenizer.json\" --set train.lr=5e-4
      --set train.warmup_updates=1000 --set train.validate_every_updates=1000
      --set train.max_updates=80000 --set train.time_limit_minutes=${TIME_LIMIT:-120}" ;;
    *) echo "unknown ablation $1" >&2; exit 2 ;;
  esac
}
OUT=runs/asr_recipe
mkdir -p "$OUT"
for name in "${@:-base prefix_norm}"; do
  extra=$(ablation "$name")
  resume=""
  [ -f "$OUT/$name/checkpoints/state.json" ] && resume="--resume"
  # shellcheck disable=SC2086
  "$BIN" train --config configs/asr_small.toml --out "$OUT/$name" $resume $extra \
    --set "data.train=\"$CORPUS/train.tsv\"" --set "data.valid=\"$CORPUS/dev.tsv\"" 2>&1 \
    | grep -v "^train epoch" | tee "$OUT/$name.console.txt" || true
  "$BIN" eval --checkpoint "$OUT/$name/checkpoints/best.safetensors" --manifest "$CORPUS/test.tsv" \
    --asr --beam 5 --out "$OUT/$name/eval-test" | tee "$OUT/$name.eval.txt"
  mkdir -p experiments/asr_recipe/logs
  cp "$OUT/$name/train_log.jsonl" "experiments/asr_recipe/logs/$name.jsonl"
  cp "$OUT/$name/eval-test/report.json" "experiments/asr_recipe/logs/$name.test.json"
done
"$BIN" plot curves --runs "$OUT" --out experiments/asr_recipe
