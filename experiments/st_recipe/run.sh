#!/usr/bin/env bash
# Issue 11's ST stage: the encoder from an ASR run of experiments/asr_recipe, then ST training.
#   CORPUS=DIR ASR=runs/asr_recipe/NAME bash experiments/st_recipe/run.sh [NAME [TRAIN ARGS...]]
# NAME base: encoder from $ASR; NAME scratch: the control, a fresh encoder (no ASR stage);
# NAME data34k: encoder from models/stages/asr_d128 (shipped as models/asr until 2026-12-02;
# WER 39.7 %), the 34093-pair corpus
# (mtla-st corpus build --n 35093), validation every 1000 updates, TIME_LIMIT minutes in all;
# NAME cross: the same with a cross-attention decoder and no dropout.
# NAME d256: ASR stage 4's model (d 256, cross decoder, no dropout, lr 2e-3) from its encoder
# (models/asr, WER 30.9 %).
# NAME d256_34k: models/st (stage d256, 6000 updates on the first 15000 pairs) trained on with
# all 34093 pairs, its tokenizer, a fresh schedule peaking at 1e-3.
# NAME d256_reg: models/st (d256_34k's best, 5896 updates) trained on with dropout 0.2 (model and
# attention; d256_34k overfits: its dev loss rose from update 3000 while the training loss fell),
# a fresh schedule peaking at 5e-4.
# NAME d256_enc5 / d256_enc5_mha: the paper's stage order on all 34093 pairs: a fresh d256 decoder
# (MTLA s = 2 / MHA, otherwise equal) on the encoder of ASR stage 5 (models/asr, WER 20.8 %),
# models/st's tokenizer, 5000 updates.
# NAME d256_sp: models/st trained on with the pairs speed-perturbed (0.9, 1.0, 1.1: 3 x 34093),
# a fresh schedule peaking at 5e-4 (as ../asr_recipe's stage 6).
# NAME d256_enc6: the stage order once more, from ASR stage 6 (models/asr: 6 encoder layers, WER
# 17.8 %): d256_enc5's fresh decoder and settings on that encoder kept frozen
# (train.freeze_encoder: no encoder backward, so about twice the updates per hour), the pairs
# speed-perturbed as the encoder was trained.
# NAME d256_enc6_mha / d256_enc6_s2: d256_enc6 with an MHA decoder / with seed 2, for the paper's
# comparison on this encoder; d256_enc6_mha_s2 (MHA, seed 2), d256_enc6_mla / d256_enc6_mla_s2
# (MLA, seeds 1 and 2: the latent cache without temporal compression) and d256_enc6_s4 /
# d256_enc6_s4_s2 (MTLA s = 4, seeds 1 and 2) complete it.
# NAME d256_ft: models/st (d256_enc6, which overfits its pairs from 13000 updates) trained on with
# the encoder no longer frozen, dropout 0.1 (model and attention) and fairseq's LB SpecAugment,
# a fresh schedule peaking at 3e-4.
# NAME d256_enc15: the stage order from ASR stage 15 (models/asr: 7 Conformer encoder layers with
# 15-tap convolution modules, test WER 10.6 %): d256_enc6's fresh decoder and settings on that
# encoder, frozen, until TIME_LIMIT.
# NAME d256_enc15_mha / d256_enc15_s2 / d256_enc15_mha_s2: d256_enc15 with an MHA decoder / with
# seed 2 / both, the paper's comparison at the shipped model's quality; d256_enc15_mla /
# d256_enc15_mla_s2 (MLA) and d256_enc15_s4 / d256_enc15_s4_s2 (MTLA s = 4) complete it.
# NAME d256_enc15_n4262 / _n8523 / _n17046: d256_enc15 on the first N pairs of train.tsv only (an
# eighth, a quarter, a half), for BLEU against the number of pairs. train.tsv is sorted by id, a
# hash of the English sentence, so its first N lines are a random subset, each inside the next.
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${CORPUS:-$HOME/corpora/deen-9k}
BIN=${BIN:-target/release/mtla-st}
ASR=${ASR:-runs/asr_recipe/base}
NAME=${1:-base}
shift || true
init=(--set "model.encoder_init=\"$PWD/$ASR/checkpoints/best.safetensors\"")
extra=()
# Whether NAME is one of the arguments.
named() { [[ " $* " == *" $NAME "* ]]; }
enc6_stages="d256_enc6 d256_enc6_mha d256_enc6_s2 d256_enc6_mha_s2 d256_enc6_mla d256_enc6_mla_s2 d256_enc6_s4 d256_enc6_s4_s2"
enc15_stages="d256_enc15 d256_enc15_mha d256_enc15_s2 d256_enc15_mha_s2 d256_enc15_mla d256_enc15_mla_s2
  d256_enc15_s4 d256_enc15_s4_s2 d256_enc15_n4262 d256_enc15_n8523 d256_enc15_n17046"
d256_stages="d256 d256_34k d256_reg d256_enc5 d256_enc5_mha d256_sp d256_ft $enc15_stages $enc6_stages"
named scratch && init=()
# shellcheck disable=SC2086
if named data34k cross $d256_stages; then
  encoder=models/stages/asr_d128
  named d256 d256_enc5 d256_enc5_mha $enc15_stages && encoder=models/asr
  # ASR stage 6's encoder: models/asr until stage 7 replaced it; models/st (d256_enc6's decoder on
  # it, frozen) holds it bit for bit.
  named $enc6_stages && encoder=models/st
  init=(--set "model.encoder_init=\"$PWD/$encoder/model.safetensors\"")
  named d256_34k d256_reg d256_sp d256_ft && init=(--set "train.init_from=\"$PWD/models/st/model.safetensors\""
    --set "data.tokenizer=\"$PWD/models/st/tokenizer.json\"")
  extra=(--set train.warmup_updates=1000 --set train.validate_every_updates=1000
    --set train.max_updates=80000 --set "train.time_limit_minutes=${TIME_LIMIT:-120}")
fi
# cross: what the ASR ablations found (../asr_recipe, "Ablations"): a cross-attention decoder
# and no dropout.
# shellcheck disable=SC2086
named cross $d256_stages && extra+=(--set model.decoder.style=\"cross\"
  --set model.decoder.cross_heads=4 --set model.dropout=0.0 --set model.decoder.attention.dropout=0.0)
# d256: also the widths and lr of ../asr_recipe's stage 4 (its ablation `d256`) and its encoder.
# shellcheck disable=SC2086
named $d256_stages && extra+=(--set train.lr=2e-3 --set model.d_model=256
    --set model.encoder.ffn_dim=1024 --set model.decoder.ffn_dim=1024
    --set model.decoder.attention.kv_lora_rank=128 --set model.decoder.attention.qk_nope_head_dim=64
    --set model.decoder.attention.v_head_dim=64 --set model.decoder.attention.qk_rope_head_dim=32)
named d256_34k && extra+=(--set train.lr=1e-3 --set train.warmup_updates=500)
named d256_reg && extra+=(--set train.lr=5e-4 --set train.warmup_updates=500
  --set model.dropout=0.2 --set model.decoder.attention.dropout=0.2 --set train.validate_every_updates=500)
named d256_sp && extra+=(--set train.lr=5e-4 --set train.warmup_updates=500
  --set "data.speed_perturb=[0.9,1.0,1.1]" --set train.validate_every_updates=500)
named d256_enc5 d256_enc5_mha $enc6_stages && extra+=(--set "data.tokenizer=\"$PWD/models/st/tokenizer.json\""
  --set train.max_updates=5000)
# The comparison stages' decoder, from the name: d256_enc*_mha*, *_mla*, *_s4* (else MTLA s = 2).
[[ $NAME == d256_enc*_mha* ]] && extra+=(--set model.decoder.attention.kind=\"mha\")
[[ $NAME == d256_enc*_mla* ]] && extra+=(--set model.decoder.attention.kind=\"mla\")
[[ $NAME == d256_enc*_s4* ]] && extra+=(--set model.decoder.attention.down_rate=4)
# Seed 2: every comparison stage named *_s2 (d256_enc6_s2 is MTLA s = 2's second seed).
[[ $NAME == d256_enc*_s2 ]] && extra+=(--set train.seed=2)
# shellcheck disable=SC2086
named $enc6_stages d256_ft && extra+=(--set model.encoder.layers=6
  --set "data.speed_perturb=[0.9,1.0,1.1]")
named $enc6_stages $enc15_stages && extra+=(--set train.freeze_encoder=true)
named $enc15_stages && extra+=(--set "data.tokenizer=\"$PWD/models/st/tokenizer.json\""
  --set model.encoder.layers=7 --set model.encoder.conv_module_kernel=15
  --set "data.speed_perturb=[0.9,1.0,1.1]")
named d256_ft && extra+=(--set train.lr=3e-4 --set train.warmup_updates=500 --set model.dropout=0.1
  --set model.decoder.attention.dropout=0.1 --set data.specaugment.freq_mask_n=1
  --set data.specaugment.time_mask_n=1)
train_tsv=$CORPUS/train.tsv
if [[ $NAME =~ ^d256_enc15_n([0-9]+)$ ]]; then
  train_tsv=$CORPUS/train_n${BASH_REMATCH[1]}.tsv   # beside train.tsv: its audio paths are relative
  head -n $((BASH_REMATCH[1] + 1)) "$CORPUS/train.tsv" > "$train_tsv"
fi
# Runs in OUT; logs and curves in LOGS (its logs/ and *.svg), as in ../asr_recipe/run.sh.
OUT=${OUT:-runs/st_recipe}
LOGS=${LOGS:-experiments/st_recipe}
mkdir -p "$OUT" "$LOGS/logs"
[ -x "$BIN" ] || cargo build --release -p mtla-st
resume=""
[ -f "$OUT/$NAME/checkpoints/state.json" ] && resume="--resume"
# shellcheck disable=SC2086
"$BIN" train --config configs/st_small.toml --out "$OUT/$NAME" $resume "${init[@]}" "${extra[@]}" "$@" \
  --set "data.train=\"$train_tsv\"" --set "data.valid=\"$CORPUS/dev.tsv\"" 2>&1 \
  | grep --line-buffered -v "^train epoch" | tee "$OUT/$NAME.console.txt"
"$BIN" eval --checkpoint "$OUT/$NAME/checkpoints/best.safetensors" --manifest "$CORPUS/test.tsv" \
  --beam 5 --out "$OUT/$NAME/eval-test" | tee "$OUT/$NAME.eval.txt"
cp "$OUT/$NAME/train_log.jsonl" "$LOGS/logs/$NAME.jsonl"
cp "$OUT/$NAME/eval-test/report.json" "$LOGS/logs/$NAME.test.json"
"$BIN" plot curves --runs "$OUT" --out "$LOGS"
