"""Fixed prose of docs/DEMT.md (the numbers are filled in by demt.report)."""

INTRO = """# DeMT: learned device-guided music transfer

DeMT (arXiv 2511.17136) renders music as heard through a given device: an HTDemucs-style hybrid
network whose frequency branch is modulated by FiLM layers driven by a device embedding. This
page is written by `sense demt eval`; every number below was measured on this machine (2 CPU
cores) on the **simulated** data described under "Data". The paper's numbers come from recordings
through 6 real devices, so they are a reference point, not a like-for-like comparison: here the
SNR ceiling is set by what the simulation adds beyond the catalogue curve (unit variation, fit,
nonlinearity, noise), which no system that only knows the catalogue curve can predict."""

METHOD = """## Method

**Model** (`demt/model.py`, reads like the paper's figure): mono waveform (channels are batch
items) -> STFT (n_fft 2048, hop 512) -> complex-as-channels spectrogram ->
3 frequency-encoder layers (Conv2d, kernel 8 / stride 4 along frequency, 1024 -> 256 -> 64 -> 16
bins) each followed by FiLM -> frequency is folded into channels, as in HTDemucs -> a
cross-domain transformer layer (self-attention in each branch, cross-attention between them) with
a 4-layer time-domain conv encoder -> decoders with skips and FiLM -> a complex *deep filter* on the input
spectrogram (per bin, a complex filter over the current and 2 previous frames, as in
DeepFilterNet), plus a waveform residual from the time branch. The last layer of each branch is
zero-initialised, so the untrained model is the identity. FiLM: `h * (1 + gamma(e)) + beta(e)`;
the small model uses gamma and beta per (channel, frequency band) of each layer
(`film_per_frequency`), a direct path from the device embedding to every frequency band.

Why a deep filter rather than the plain mask HTDemucs-style models use: device responses
(loudspeaker bass roll-offs and port resonances above all) have impulse responses longer than
an STFT hop. We measured the best any per-bin single-frame complex gain can do (least squares per
bin, knowing the true filtered signal) on four loudspeakers: 12.6-33.5 dB SNR at n_fft 2048 /
hop 1024 and 13.1-35.1 dB at hop 512, below the bar for two of them; with a 3-frame per-bin
filter at hop 512 the same oracle reaches 32.2-49.0 dB. Two first runs with a plain mask (per-channel FiLM at hop 512, per-band FiLM at hop 1024) were
stopped after a few hundred steps for this reason (and for CPU time). Loss: negative SNR (dB) on the waveform. `LARGE` in `demt/model.py` is
the GPU configuration (4 frequency layers, 4 transformer layers, HTDemucs widths, 4 s segments).

**Device embeddings** (`demt/devices.py`): the default curve encoder maps a response (dB on the
FR store's 481-point grid) to 64 numbers: 1/6-octave smoothing, read at 64 log-spaced points from
20 Hz to 20 kHz (one every 0.16 octave), divided by 10 dB. 64 is chosen because 1/6 octave is the
DSP transfer's own smoothing, so the embedding holds everything the DSP transfer uses, and finer
detail is below the unit-to-unit variation of real devices. It needs no weights and works for
devices never seen. The paper's path, `demt/vlm.py`: the curve is drawn as a PNG line graph,
passed with a short prompt through a transformers vision-language model, and the last hidden
layer is average-pooled; it is tested with a tiny random LLaVA built from a config; point it at
real local weights with `VLMEmbedder.from_pretrained("/path/to/Llama-3.2-11B-Vision")` and train
with `DemtConfig(embed_dim=emb.dim, embedder="vlm:/path")`: training pools and `apply_demt`
then embed curves with that VLM (`demt.devices.get_encoder`); no download ever happens at run time.
**Embedding pool** per device: the catalogue curve, each measured unit (other oratory1990 /
RTINGS measurements, other loudspeaker samples), the loudspeaker's on-axis curve, and 6 smooth
perturbations (0.5 dB RMS, x2 above 4 kHz); each training example draws one. At test time the
model gets the catalogue curve's embedding, like the DSP transfer.

**Metrics**: SNR (dB) = 10 log10(sum y^2 / sum (y_hat - y)^2) on the waveform, after the filter
pre-roll; RMSE = `tools.metrics.spectral_rmse_db`, the RMS difference in dB of the 1/6-octave
smoothed long-term spectra over 50 Hz-16 kHz (the paper gives 0.45 with no unit we could
reproduce, so the two RMSE columns are not comparable); STOI = pystoi at 10 kHz, in %.
**DSP baseline**: `tools.transfer.transfer_curve(catalogue, flat)` (1/6-octave smoothing, boosts
limited to 6 dB, cuts to 24 dB) as a minimum-phase FIR, exactly what `device_transfer` does."""

RECIPE_TEXT = """## Data (simulation recipe, `demt/data.py`, saved as recipe.json with the checkpoint)

- **Music**: train = Dance of the Sugar Plum Fairy, Let's Go Fishin' and the Slakh Track00001
  multitrack song rendered from `all_src.mid` with FluidSynth + FluidR3 GM (241 s, cached);
  validation = Hungarian Dance No. 5, trumpet loop; test = Vibe Ace and the three CC BY-NC tracks
  (evaluation only, never trained on). Split by track. Excerpts are levelled to a random RMS in
  {level_dbfs} dBFS.
- **Devices**: 9 headphone/earphone models (AutoEq: measurement minus the class target) and 93
  loudspeaker models (ASR spinoramas: listening window), 102 in all; a seeded choice of 1
  earphone and 8 loudspeakers is held out and never used in training.
- **Unit-to-unit variation**: one of the model's measured units where several exist (Sony
  WH-1000XM4: oratory1990 and RTINGS; JBL 705P: 2 samples; Neumann KH 80: 3 samples), plus
  1-octave-smooth random deviation of {unit_rms_db} dB RMS (x{headphone_treble_factor} above 4 kHz for headphones).
- **Fit / seal** (in-ear, earbud): bass loss -L / (1 + (f/fc)^2), L in {seal_loss_db} dB, fc in
  {seal_corner_hz} Hz.
- **Nonlinearity**: x + a3 x^3 before the device filter, 3rd harmonic at {thd_fs_db} dB for a
  full-scale sine (so about -70 dB at typical levels, rising with level).
- **Noise**: white, {noise_db} dB relative to the output RMS.
- The unit curve is a minimum-phase FIR of {ir_taps} taps at {sample_rate} Hz; {preroll} samples of
  pre-roll feed the filter and are not scored.
These magnitudes are typical published spreads (unit variation of good loudspeakers within about
+-1 dB; in-ear seal losses of a few dB below 200 Hz; distortion of -40..-60 dB) and were fixed
before training; they were not tuned to the acceptance bar."""

REPRO = """## How to reproduce

```
sense demt data --split test                  # optional: the test set as WAV pairs + manifest
R=~/.sense/demt/runs
sense demt train --out $R/main --steps 3000 --keep 400,800,1500,2500 --threads 1
sense demt train --out $R/nofilm --no-film --steps 2500 --max-steps 800 --threads 1
sense demt train --out $R/pool1 --pool one --steps 2500 --max-steps 800 --threads 1
sense demt train --out $R/fewshot/samsung-galaxy-buds2-pro-p02 --init-from $R/main/step2500.pt \\
    --device "Samsung Galaxy Buds2 Pro" --audio-fraction 0.02 --steps 100 --lr 3e-4 --warmup 10
    # (and -p05 with --audio-fraction 0.05; the same for the other few-shot devices)
sense demt export $R/main/last.pt             # -> demt/checkpoints/small (float16 weights)
sense demt eval --checkpoint demt/checkpoints/small --runs $R --results $R/DEMT.json   # -> docs/DEMT.md
sense demt export $R/main/last.pt --results $R/DEMT.json   # metrics.json with these numbers
python -m demt.bench                          # speed on 30 s of stereo 44.1 kHz
```
Training and evaluation are seeded (device split, excerpts, simulation draws). The shipped run was
resumed twice (`--resume`) while CPU time was being planned: steps 0-1000 ran with `--steps 2500`,
1000-2250 with `--steps 3500`, 2250-3000 with `--steps 3000`; all three schedules hold the learning
rate constant at 1.5e-3 up to step 2100, so the only difference from one `--steps 3000` run is that
the cosine decay started at step 2250 (from 1.4e-3) instead of 2100. Batch 8 x 1.5 s mono excerpts
at 44.1 kHz, i.e. 3000 steps = 10 h of simulated audio. Test-time inference is at 44.1 kHz, the training rate."""

DISCUSSION = """## Discussion

- **Seen devices**: DeMT beats the DSP transfer on the same simulated data (22.0 vs 20.5 dB SNR)
  and passes the paper's bar. The gain is largest for in-ear devices (23.0 vs 16.9 dB): from the
  data the model learned the typical fit/seal bass loss, which the catalogue curve (all the DSP
  transfer knows) does not contain. On loudspeakers it gains about 1.4 dB, plausibly because it
  renders the unsmoothed curve and the steep bass roll-off, where the DSP transfer smooths at 1/6
  octave and limits cuts with a soft knee. Over-ear and earbud devices are on par with the DSP.
- **Held-out devices** (never seen): zero-shot DeMT is clearly worse than the DSP transfer
  (17.4 vs 21.2 dB): 93 training devices and 3000 CPU steps do not teach the model to read an
  arbitrary new curve as precisely as a filter design does. For an unknown device, the DSP
  transfer is the better choice; DeMT should be chosen for catalogued (seen) devices.
- **Few-shot**: adapting to a held-out device with 2 % of the per-device training audio (about
  10 s of music, 100 steps, about 1.5 min on one CPU thread) gains 4.6-5.6 dB over zero-shot;
  5 % brings nothing more (the 100-step budget, not the data, limits it). After adaptation the
  loudspeaker beats the DSP transfer by 5 dB; the earphone stays 1.9 dB below it.
- **No FiLM**: the model has no path for the device and learns only the average device:
  11.6 dB at step 800 against 17.2 dB with FiLM (5.5 dB worse). The paper's no-FiLM figure
  (2.31 dB) is lower because its baseline is lower: here even the identity scores 5.3 dB and the
  average device response is a good part of every device's response.
- **Pool of 1**: *differs from the paper* (EP-1: 3.50 dB): here the pool of 1 is as good as the
  full pool (17.5 vs 17.2 dB on seen devices, 14.8 vs 14.9 dB held-out, at step 800; also at step
  400). Our default embedding is a deterministic encoding of the curve, so the catalogue embedding
  used at test time is exactly the one trained on, and pool members (other units, on-axis curves,
  0.5 dB perturbations) act only as label noise/augmentation. In the paper the embeddings come
  from a VLM reading plots, where different renderings/measurements of one device move the
  embedding much more, and training on one embedding per device overfits. The benefit we would
  expect from the pool (robustness for new or noisy curves) did not show on held-out devices
  within 800 steps; longer ablations did not fit the CPU budget.
- **STOI** averages above 99.4 % for DeMT, the DSP transfer and even the identity (lowest single
  device: identity on the Realistic MC-1000, 97.9 %): STOI, an intelligibility measure built for
  speech, saturates for linear colouration of music and barely separates the systems; SNR and the
  spectral RMSE do. Only the no-FiLM ablation drops clearly (95.9-97.2 %).
- The shipped weights are float16: on 7 test excerpts their SNR differs from the float32
  training checkpoint by at most 0.009 dB (mean 20.819 vs 20.820 dB)."""
