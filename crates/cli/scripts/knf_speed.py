"""Times kaldi-native-fbank (C++) on WAV files, single-threaded, with the same Kaldi options as
`mtla-st fbank` (80 bins, dither 0, int16 scale). Prints one JSON line: audio seconds, compute
seconds (best of --reps). Used by `mtla-st bench fbank`; needs the oracle venv."""
import json, sys, time
import numpy as np, soundfile as sf, kaldi_native_fbank as knf

reps = int(sys.argv[1])
files = sys.argv[2:]
o = knf.FbankOptions()
o.frame_opts.dither = 0.0
o.frame_opts.samp_freq = 16000
o.mel_opts.num_bins = 80
o.mel_opts.low_freq = 20.0
o.mel_opts.high_freq = 0.0
waves = [sf.read(f, dtype="float32")[0] * 32768.0 for f in files]
audio = sum(len(w) for w in waves) / 16000.0
best = float("inf")
for _ in range(reps):
    t0 = time.perf_counter()
    for w in waves:
        fb = knf.OnlineFbank(o)
        fb.accept_waveform(16000.0, w)
        fb.input_finished()
        feats = fb.get_frames(list(range(fb.num_frames_ready))) if hasattr(fb, "get_frames") else [fb.get_frame(i) for i in range(fb.num_frames_ready)]
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"audio_s": audio, "compute_s": best, "files": len(files)}))
