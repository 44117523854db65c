#!/usr/bin/env bash
# Regenerates the fbank parity fixtures with kaldi-native-fbank (the oracle in
# ../shared/oracles, run in its venv). Not run by CI: the outputs are committed.
#   bash crates/fbank/tests/data/make_fixtures.sh [ORACLES_DIR] [PYTHON]
set -euo pipefail
cd "$(dirname "$0")"
ORACLES=${1:-../../../../../shared/oracles}
PY=${2:-$HOME/oracle-venv/bin/python}

# Test signals written with soundfile (PCM_16 unless the name says otherwise).
"$PY" - <<'PYEOF'
import numpy as np, soundfile as sf
rng = np.random.default_rng(7)
sr = 16000
t = np.arange(int(1.3 * sr)) / sr
tones = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1000 * t) + 0.05 * np.sin(2 * np.pi * 6100 * t)
sf.write("tones.wav", tones, sr, subtype="PCM_16")
sf.write("noise.wav", 0.1 * rng.standard_normal(int(0.9 * sr)), sr, subtype="PCM_16")
# Near-silence: a quiet chirp that fades in from digital zero.
chirp = 0.002 * np.sin(2 * np.pi * (100 + 3000 * t[: int(0.7 * sr)]) * t[: int(0.7 * sr)])
chirp[: 2000] = 0.0
sf.write("silence.wav", chirp, sr, subtype="PCM_16")
# The same tones as 24-bit PCM, 32-bit PCM and 32-bit float, and in the right channel of a stereo file.
sf.write("tones_pcm24.wav", tones, sr, subtype="PCM_24")
sf.write("tones_pcm32.wav", tones, sr, subtype="PCM_32")
sf.write("tones_float.wav", tones.astype(np.float32), sr, subtype="FLOAT")
sf.write("stereo.wav", np.stack([0.5 * rng.standard_normal(len(t)) * 0.01, tones], axis=1), sr, subtype="PCM_16")
# 8 kHz tones, for a non-default sample rate.
t8 = np.arange(int(1.0 * 8000)) / 8000
sf.write("tones_8k.wav", 0.3 * np.sin(2 * np.pi * 300 * t8) + 0.2 * np.sin(2 * np.pi * 2500 * t8), 8000, subtype="PCM_16")
PYEOF
# Real (synthetic) speech.
espeak-ng -v en-us -s 150 -w speech_raw.wav "The quick brown fox jumps over the lazy dog near the river bank."
sox speech_raw.wav -r 16000 -b 16 -c 1 speech.wav && rm speech_raw.wav

for f in tones noise silence speech tones_pcm24 tones_pcm32 tones_float; do
  "$PY" "$ORACLES/fbank_reference.py" "$f.wav" --out "$f.fbank.npy" >/dev/null
done
"$PY" "$ORACLES/fbank_reference.py" stereo.wav --channel 1 --out stereo_ch1.fbank.npy >/dev/null
"$PY" "$ORACLES/fbank_reference.py" tones_8k.wav --expect-rate 0 --num-bins 40 --out tones_8k_40bins.fbank.npy >/dev/null
"$PY" "$ORACLES/fbank_reference.py" speech.wav --num-bins 23 --out speech_23bins.fbank.npy >/dev/null
ls -la
