#!/usr/bin/env bash
# Experiment 1: per-token decode time and KV-cache bytes of the paper's decoder (9 layers,
# d 512, 8 heads; MTLA r 256, rope 32) as prefix + target length grows, for every attention
# kind, at beam 1, 5 and 50 (skipping points whose cache would exceed MAX_GIB). No training.
#   bash experiments/decode_efficiency/run.sh            (CPU; add BACKENDS="cpu wgpu" for WebGPU)
# A software WebGPU adapter (lavapipe) is ~100x slower than the CPU backend, so wgpu gets its own,
# smaller grid (WGPU_VARIANTS, WGPU_LENGTHS, WGPU_BEAMS, WGPU_STEPS); on a real GPU set them to the CPU's.
# wgpu needs a binary built with `--features wgpu` (BIN=...).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/mtla-st}
BACKENDS=${BACKENDS:-cpu}
OUT=${OUT:-experiments/decode_efficiency}
LENGTHS=${LENGTHS:-64,256,1024,4096}
BEAMS=${BEAMS:-1,5,50}
MAX_GIB=${MAX_GIB:-3}
[ -x "$BIN" ] || cargo build --release -p mtla-st
mkdir -p "$OUT"
VARIANTS=mha,gqa,mqa,mla,mtla2,mtla3,mtla4
STEPS=16
for backend in $BACKENDS; do
  if [ "$backend" = wgpu ]; then
    VARIANTS=${WGPU_VARIANTS:-mha,mla,mtla2,mtla4} LENGTHS=${WGPU_LENGTHS:-64,256,1024}
    BEAMS=${WGPU_BEAMS:-1,5} STEPS=${WGPU_STEPS:-5}
  fi
  "$BIN" bench decode --config configs/paper_mustc.toml --variants "$VARIANTS" \
    --lengths "$LENGTHS" --beams "$BEAMS" --steps "$STEPS" --max-cache-gib "$MAX_GIB" --backend "$backend" \
    --json "$OUT/$backend.json" | tee "$OUT/$backend.md"
  "$BIN" plot decode --json "$OUT/$backend.json" --out "$OUT"
done
