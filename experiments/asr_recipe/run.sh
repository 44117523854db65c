#!/usr/bin/env bash
# Issue 11's ASR recipe search: short runs of config.toml, one change each, on the offline Debian
# corpus; every run logs whether it listens (audio gain, greedy CTC WER) at each validation.
#   CORPUS=DIR bash experiments/asr_recipe/run.sh [ABLATION ...]     (default: base prefix_norm)
# A run that exists is resumed (exactly) rather than restarted; curves and logs land in LOGS
# (default: this folder), runs in OUT (default: runs/asr_recipe). The one-change ablations on the
# 34k-utterance corpus (2000 updates each; README "Ablations"):
#   OUT=runs/asr_ablations LOGS=experiments/asr_recipe/ablations CORPUS=DIR \
#     bash experiments/asr_recipe/run.sh base vocab300 vocab1000 ctc0 ctc0.6 ctc_only ...
# Stage 9 (README "Stage 9"), each kind's decoder on the shipped encoder; UPDATES sets max_updates:
#   UPDATES=3000 OUT=runs/asr_stage9 LOGS=experiments/asr_recipe/stage9 \
#     bash experiments/asr_recipe/run.sh kinds_mha kinds_mla kinds_mtla2 kinds_mtla4 kinds_mha_seed2 ...
# Stage 16, the same on the stage 15 encoder: run.sh kinds15_mha kinds15_mtla2 (kinds15_mla,
# kinds15_mtla4, kinds15_gqa, and each with _seed2) (README "Stage 16").
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
    # The paper's stage order on the same budget: the encoder alone (CTC weight 1) for 1000
    # updates, then the whole model from that encoder (encoder_init) for 1000 more.
    ctc_only) echo "--set model.ctc_weight=1.0 --set train.max_updates=1000" ;;
    from_ctc) echo "--set model.encoder_init=\"$PWD/$OUT/ctc_only/checkpoints/best.safetensors\"
      --set train.max_updates=1000" ;;
    ctc0) echo "--set model.ctc_weight=0.0 --set eval.ctc_weight=0.0" ;;
    ctc0.6) echo "--set model.ctc_weight=0.6" ;;
    vocab300) echo "--set model.vocab_size=300" ;;
    vocab1000) echo "--set model.vocab_size=1000" ;;
    lr2e-3) echo "--set train.lr=2e-3" ;;
    dropout0) echo "--set model.dropout=0.0 --set model.decoder.attention.dropout=0.0" ;;
    cross) echo "--set model.decoder.style=\"cross\" --set model.decoder.cross_heads=4" ;;
    # The two changes that helped most at 2000 updates, together.
    cross_dropout0) echo "$(ablation cross) $(ablation dropout0)" ;;
    # ... with MHA instead of MTLA s = 2, and a second seed of the MTLA run.
    cross_dropout0_mha) echo "$(ablation cross_dropout0) $(ablation mha)" ;;
    cross_dropout0_seed2) echo "$(ablation cross_dropout0) --set train.seed=2" ;;
    # Twice the width everywhere (d 256, FFN 1024, MTLA r 128, head dims 64 / 64 / rope 32).
    d256) echo "--set model.d_model=256 --set model.encoder.ffn_dim=1024 --set model.decoder.ffn_dim=1024
      --set model.decoder.attention.kv_lora_rank=128 --set model.decoder.attention.qk_nope_head_dim=64
      --set model.decoder.attention.v_head_dim=64 --set model.decoder.attention.qk_rope_head_dim=32" ;;
    mha) echo "--set model.decoder.attention.kind=mha" ;;
    # Stage 4 (what the ablations point to, together): d 256, cross decoder, no dropout, lr 2e-3,
    # from scratch (README "Stage 4").
    d256_cross) echo "$(ablation d256) $(ablation cross_dropout0) $(ablation lr2e-3)
      --set train.validate_every_updates=500 --set train.max_updates=80000
      --set train.time_limit_minutes=${TIME_LIMIT:-60}" ;;
    # MHA against MTLA s = 2 on stage 4's recipe, the first 3000 updates, two seeds each (MTLA
    # seed 1 is d256_cross's own checkpoint u00003000; README "Stage 4").
    d256_cross_mha) echo "$(ablation d256_cross) $(ablation mha) --set train.max_updates=3000" ;;
    d256_cross_seed2) echo "$(ablation d256_cross) --set train.seed=2 --set train.max_updates=3000" ;;
    d256_cross_mha_seed2) echo "$(ablation d256_cross_mha) --set train.seed=2" ;;
    # After stage 4: its update 7000 (dev accuracy 90.1 %, training loss far below the dev
    # loss) with SpecAugment and a fresh schedule peaking at 5e-4; same tokenizer (README "Stage
    # 4 continued"). Time masks milder than fairseq's LB policy, whose single mask of up to 100
    # frames can hide whole words of these 2-4 s utterances: two frequency masks < 27 bins, two
    # time masks each < 40 frames and < 10 % of the utterance. It still costs 3-4 dev points.
    d256_specaug) echo "$(ablation d256_cross)
      --set train.init_from=\"$PWD/$OUT/d256_cross/checkpoints/stage_u7000.safetensors\"
      --set data.tokenizer=\"$PWD/$OUT/d256_cross/tokenizer.json\" --set data.specaugment.freq_mask_n=2
      --set data.specaugment.time_mask_n=2 --set data.specaugment.time_mask_t=40
      --set data.specaugment.time_mask_p=0.1 --set train.lr=5e-4 --set train.warmup_updates=1000" ;;
    # Stage 5: the shipped model (stage 4 at 5500 updates on 15000 utterances, its 3 best
    # averaged) on the whole 34093-utterance corpus (31.9 h, --n 35093; dev/test unchanged), its
    # tokenizer, a fresh schedule peaking at 1e-3 (README "Stage 5").
    d256_34k) echo "$(ablation d256_cross) --set train.init_from=\"../models/asr/model.safetensors\"
      --set data.tokenizer=\"../models/asr/tokenizer.json\" --set train.lr=1e-3
      --set train.warmup_updates=500" ;;
    # Stage 6: the shipped stage 5 model (its late 3-best average, which had begun to overfit the
    # 31.9 h) on the same corpus speed-perturbed (0.9, 1.0, 1.1: 3 x 34093 utterances), its
    # tokenizer, a fresh schedule peaking at 5e-4; with and without dropout 0.1 (README "Stage 6").
    d256_sp) echo "$(ablation d256_cross) --set train.init_from=\"../models/asr/model.safetensors\"
      --set data.tokenizer=\"../models/asr/tokenizer.json\" --set data.speed_perturb=[0.9,1.0,1.1]
      --set train.lr=5e-4 --set train.warmup_updates=500" ;;
    d256_sp_dropout) echo "$(ablation d256_sp) --set model.dropout=0.1
      --set model.decoder.attention.dropout=0.1" ;;
    # ... with twice the encoder layers (6): models/asr deepened by `mtla-st model deepen` (the
    # added layers identities, so training starts from the shipped model's outputs).
    d256_deep6_sp) echo "$(ablation d256_sp) --set model.encoder.layers=6
      --set train.init_from=\"$(cd "$OUT" && pwd)/deep6_init.safetensors\"" ;;
    # Stage 7: the shipped stage 6 model (6 encoder layers, its 3-best average, f16) trained on
    # with the same data and tokenizer, a fresh schedule peaking lower, at 3e-4 (README "Stage 7").
    d256_deep6_sp2) echo "$(ablation d256_sp) --set model.encoder.layers=6 --set train.lr=3e-4" ;;
    # Stage 12: the shipped stage 7 model trained on, a fresh schedule peaking at 2e-4: as it is
    # (the control: more updates only) and with one more encoder layer (identity at the start)
    # and five speeds instead of three (README "Stage 12").
    stage12_control) echo "$(ablation d256_deep6_sp2) --set train.lr=2e-4" ;;
    stage12_deep7_sp5) echo "$(ablation stage12_control) --set model.encoder.layers=7
      --set data.speed_perturb=[0.8,0.9,1.0,1.1,1.2]
      --set train.init_from=\"$(cd "$OUT" && pwd)/deep7_init.safetensors\"" ;;
    # Stage 15: the shipped model (stage 13, 7 layers) with a Conformer convolution module of
    # 15 taps in every encoder layer (identities at the start), stage 12's schedule and data
    # (README "Stage 15").
    stage15_conformer) echo "$(ablation stage12_control) --set model.encoder.layers=7
      --set model.encoder.conv_module_kernel=15 --set data.speed_perturb=[0.8,0.9,1.0,1.1,1.2]
      --set train.init_from=\"$(cd "$OUT" && pwd)/conformer15_init.safetensors\"" ;;
    # Stage 9, the paper's comparison at the shipped model's quality: fresh decoders of each
    # attention kind on the shipped encoder (6 layers, frozen, its weights via encoder_init; a
    # fresh CTC head), stage 4's decoder recipe, the same data, tokenizer and number of updates
    # (UPDATES, default 3000), two seeds each (README "Stage 9").
    kinds) echo "$(ablation d256_cross) --set model.encoder.layers=6
      --set model.encoder_init=\"../models/asr/model.safetensors\" --set train.freeze_encoder=true
      --set data.tokenizer=\"../models/asr/tokenizer.json\" --set data.speed_perturb=[0.9,1.0,1.1]
      --set train.max_updates=${UPDATES:-3000} --set train.time_limit_minutes=0" ;;
    kinds_mtla2) ablation kinds ;;
    kinds_mtla4) echo "$(ablation kinds) --set model.decoder.attention.down_rate=4" ;;
    kinds_mha) echo "$(ablation kinds) $(ablation mha)" ;;
    kinds_mla) echo "$(ablation kinds) --set model.decoder.attention.kind=mla" ;;
    # Stage 16: stage 9's comparison on the stage 15 encoder (`models/asr`: 7 layers with 15-tap
    # Conformer convolution modules): a fresh MHA, MLA or MTLA s = 2 / 4 decoder, the encoder frozen.
    kinds15_mtla2) echo "$(ablation kinds) --set model.encoder.layers=7 --set model.encoder.conv_module_kernel=15" ;;
    kinds15_mha) echo "$(ablation kinds15_mtla2) $(ablation mha)" ;;
    kinds15_mla) echo "$(ablation kinds15_mtla2) --set model.decoder.attention.kind=mla" ;;
    kinds15_mtla4) echo "$(ablation kinds15_mtla2) --set model.decoder.attention.down_rate=4" ;;
    # GQA with the config's 2 K/V heads, as the paper's GQA baseline (here 2 query heads each).
    kinds15_gqa) echo "$(ablation kinds15_mtla2) --set model.decoder.attention.kind=gqa" ;;
    kinds*_seed2) echo "$(ablation "${1%_seed2}") --set train.seed=2" ;;
    # Stage 2: the shipped model (base, 29299 updates, listening) trained on with SpecAugment
    # (fairseq's LB policy: one frequency mask <= 27 bins, one time mask <= 100 frames) and a
    # fresh schedule peaking at 5e-4; its tokenizer, so the pieces stay the same.
    specaug) echo "--set train.init_from=\"../models/stages/asr_d128/model.safetensors\"
      --set data.tokenizer=\"../models/stages/asr_d128/tokenizer.json\" --set data.specaugment.freq_mask_n=1
      --set data.specaugment.time_mask_n=1 --set train.lr=5e-4 --set train.validate_every_updates=500
      --set train.max_updates=40000 --set train.time_limit_minutes=${TIME_LIMIT:-130}" ;;
    # Stage 3: the shipped model (base) trained on 4x the sentences (the corpus rebuilt with
    # --n 35093: 34093 training utterances, 31.9 h; dev/test unchanged); its tokenizer, a fresh
    # schedule peaking at 5e-4 over 1000 warm-up updates, no SpecAugment (stage 2: no gain).
    data34k) echo "--set train.init_from=\"../models/stages/asr_d128/model.safetensors\"
      --set data.tokenizer=\"../models/stages/asr_d128/tokenizer.json\" --set train.lr=5e-4
      --set train.warmup_updates=1000 --set train.validate_every_updates=1000
      --set train.max_updates=80000 --set train.time_limit_minutes=${TIME_LIMIT:-120}" ;;
    *) echo "unknown ablation $1" >&2; exit 2 ;;
  esac
}
OUT=${OUT:-runs/asr_recipe}
LOGS=${LOGS:-experiments/asr_recipe}
EXTRA=${EXTRA:-}   # more --set options for every run
mkdir -p "$OUT" "$LOGS/logs"
[ $# -gt 0 ] || set -- base prefix_norm
for name in "$@"; do
  extra=$(ablation "$name")
  # Runs that start from models/asr grown (the added layers or modules identities). models/asr
  # moves on as stages ship: to repeat a run, first restore the model of its day (stage 12:
  # `git checkout f7caf2b -- models/asr`, the 6-layer stage 7 model; stage 6: its stage 5 model;
  # stage 15: `git checkout 1c8d508 -- models/asr`, the f16 stage 13 model).
  case "$name" in
    d256_deep6_sp) layers=6 ;;
    stage12_deep7_sp5) layers=7 ;;
    *) layers="" ;;
  esac
  if [ -n "$layers" ] && [ ! -f "$OUT/deep${layers}_init.safetensors" ]; then
    "$BIN" model deepen --checkpoint models/asr/model.safetensors --encoder-layers "$layers" \
      --out "$OUT/deep${layers}_init.safetensors"
  fi
  if [ "$name" = stage15_conformer ] && [ ! -f "$OUT/conformer15_init.safetensors" ]; then
    "$BIN" model deepen --checkpoint models/asr/model.safetensors --conv-module-kernel 15 \
      --out "$OUT/conformer15_init.safetensors"
  fi
  resume=""
  [ -f "$OUT/$name/checkpoints/state.json" ] && resume="--resume"
  # shellcheck disable=SC2086
  "$BIN" train --config configs/asr_small.toml --out "$OUT/$name" $resume $extra $EXTRA \
    --set "data.train=\"$CORPUS/train.tsv\"" --set "data.valid=\"$CORPUS/dev.tsv\"" 2>&1 \
    | grep --line-buffered -v "^train epoch" | tee "$OUT/$name.console.txt" || true
  cp "$OUT/$name/train_log.jsonl" "$LOGS/logs/$name.jsonl"
  [ "$name" = ctc_only ] && continue   # its decoder never trained: the dev CTC WER says it all
  # Decoded as the run's config says (jointly with the CTC head where it has one).
  "$BIN" eval --checkpoint "$OUT/$name/checkpoints/best.safetensors" --manifest "$CORPUS/test.tsv" \
    --asr --beam 5 --out "$OUT/$name/eval-test" | tee "$OUT/$name.eval.txt"
  cp "$OUT/$name/eval-test/report.json" "$LOGS/logs/$name.test.json"
done
"$BIN" plot curves --runs "$OUT" --out "$LOGS"
