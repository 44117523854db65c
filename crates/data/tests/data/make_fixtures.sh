#!/bin/bash
# Regenerates the data-layer test fixtures (needs sox and Python's sentencepiece package).
set -euo pipefail
cd "$(dirname "$0")"
# 0.6 s rising chirp with a little noise, 16 kHz mono 16-bit, and the same audio as FLAC
# (lossless: must decode to identical samples) and Ogg Vorbis (lossy).
sox -n -r 16000 -b 16 -c 1 chirp.wav synth 0.6 sine 300-3000 synth 0.6 whitenoise mix gain -12
sox chirp.wav chirp.flac
sox chirp.wav -C 0 chirp.ogg
# A fairseq-style SentencePiece unigram model (ids <s>=0 <pad>=1 </s>=2 <unk>=3, identity
# normaliser so the file stays small) and its segmentations of a few sentences.
python3 make_spm_fixture.py
