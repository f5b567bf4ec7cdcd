"""The DeMT model: an HTDemucs-style hybrid with FiLM on the frequency branch.

Reads like the paper's figure (arXiv 2511.17136, Fig. 1; HTDemucs, Rouard et al. 2023):

    x (B, L) mono waveform ─┬─ STFT ─ CaC (B, 2, F, T) ─ FreqEnc1..3 (+FiLM) ─┐
                            │                                                 ├─ cross-domain
                            └───────────────────────── TimeEnc1..4 ──────────┘   transformer
    FreqDec3..1 (+FiLM, skips) ─ complex deep filter M (B, K, F, T) ─ iSTFT(Σ_k M_k·STFT(x)[t-k]) ─┐
    TimeDec4..1 (skips) ───────────────── waveform residual r (B, L) ─────────┴─ y = sum

Device conditioning: the device embedding e (B, D) goes through a small MLP; every frequency
encoder and decoder layer has a FiLM layer (gamma, beta per channel) driven by it:
``h <- h * (1 + gamma(e)) + beta(e)``. The time branch sees the device only through the
cross-domain transformer. The last layer of each branch is zero-initialised, so the untrained
model is the identity (M = 1, r = 0): device deviations are mostly linear filters, and the
network learns the deviation from the input.

Channels of a stereo signal are processed as batch items (a mono model).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class DemtConfig:
    """Model hyper-parameters (saved as config.json with a checkpoint)."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop: int = 512
    df_order: int = 3  # deep filter: a complex filter over this many frames per bin (1 = a plain mask)
    embed_dim: int = 64
    cond_dim: int = 128
    freq_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    time_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    stride: int = 4
    kernel: int = 8
    d_model: int = 128
    heads: int = 4
    transformer_layers: int = 1
    film: bool = True
    film_per_frequency: bool = True  # FiLM gamma/beta per (channel, frequency band) instead of per channel
    embedder: str = "curve"  # 'curve' (demt.devices.encode_curve) or 'vlm:<path>' (demt.vlm)
    segment_seconds: float = 1.5

    def to_json(self) -> dict:
        return asdict(self)


SMALL = DemtConfig()
"""Trains on 2 CPU cores in under an hour (the shipped checkpoint)."""
LARGE = DemtConfig(freq_channels=[48, 96, 192, 384], time_channels=[16, 32, 64, 128], d_model=384,
                   heads=8, transformer_layers=4, cond_dim=256, segment_seconds=4.0)
"""For a GPU: HTDemucs-like widths, 4 frequency layers, 4 transformer layers, 4 s segments."""


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018): h * (1 + gamma(c)) + beta(c), per channel.

    Zero-initialised, so it starts as the identity. ``enabled=False`` makes it the identity
    forever (the no-FiLM ablation: the model gets no device information).
    """

    def __init__(self, cond_dim: int, channels: int, enabled: bool = True, bins: int = 1):
        super().__init__()
        self.enabled, self.channels, self.bins = enabled, channels, bins
        self.proj = nn.Linear(cond_dim, 2 * channels * bins)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return h
        gamma, beta = self.proj(cond).chunk(2, dim=-1)  # (B, C * bins) each
        if self.bins > 1:  # per (channel, frequency band): (B, C, F, 1)
            shape = (h.shape[0], self.channels, self.bins, 1)
        else:
            shape = (h.shape[0], -1) + (1,) * (h.dim() - 2)
        return h * (1 + gamma.view(shape)) + beta.view(shape)


class CrossDomainLayer(nn.Module):
    """One HTDemucs cross-domain transformer layer: self-attention in each branch, then each
    branch attends to the other. Tokens: (B, T_f, d) frequency frames and (B, T_t, d) time frames."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.self_f = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.self_t = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.norm_f, self.norm_t = nn.LayerNorm(d), nn.LayerNorm(d)
        self.cross_f = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross_t = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, f: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, t = self.self_f(f), self.self_t(t)
        nf, nt = self.norm_f(f), self.norm_t(t)
        f = f + self.cross_f(nf, nt, nt, need_weights=False)[0]
        t = t + self.cross_t(nt, nf, nf, need_weights=False)[0]
        return f, t


def _sinusoid(n: int, d: int, device) -> torch.Tensor:
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    i = torch.arange(d // 2, device=device, dtype=torch.float32)[None]
    ang = pos / (10000 ** (2 * i / d))
    return torch.cat([ang.sin(), ang.cos()], dim=1)  # (n, d)


class DemtModel(nn.Module):
    """FiLM-conditioned hybrid (time + frequency) transfer network; see the module doc.

    forward(x (B, L) float waveform, emb (B, embed_dim)) -> (B, L) waveform as heard through the device.
    """

    def __init__(self, cfg: DemtConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DemtConfig()
        k, s = cfg.kernel, cfg.stride
        self.n_bins = cfg.n_fft // 2  # the Nyquist bin is passed through unchanged
        self.cond = nn.Sequential(nn.Linear(cfg.embed_dim, cfg.cond_dim), nn.GELU(),
                                  nn.Linear(cfg.cond_dim, cfg.cond_dim), nn.GELU())
        # frequency branch: Conv2d over (freq, time) with kernel (k, 1), stride (s, 1), like HTDemucs
        chans = [2] + list(cfg.freq_channels)
        out_chans = [2 * cfg.df_order] + list(cfg.freq_channels)
        self.f_enc = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], (k, 1), (s, 1), ((k - s) // 2, 0))
                                   for i in range(len(chans) - 1))
        bins = [self.n_bins // s ** (i + 1) if cfg.film_per_frequency else 1 for i in range(len(chans) - 1)]
        self.f_enc_film = nn.ModuleList(FiLM(cfg.cond_dim, c, cfg.film, b) for c, b in zip(chans[1:], bins))
        self.f_dec = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], out_chans[i], (k, 1), (s, 1), ((k - s) // 2, 0))
                                   for i in reversed(range(len(chans) - 1)))
        self.f_dec_film = nn.ModuleList(FiLM(cfg.cond_dim, c, cfg.film, b)
                                        for c, b in zip(reversed(chans[1:-1]), reversed(bins[:-1])))
        self.freq_emb = nn.Parameter(torch.zeros(chans[1], self.n_bins // s, 1))  # learned frequency embedding
        nn.init.normal_(self.freq_emb, std=0.2)
        f_bott = self.n_bins // s ** (len(chans) - 1)
        self.f_in = nn.Linear(chans[-1] * f_bott, cfg.d_model)
        self.f_out = nn.Linear(cfg.d_model, chans[-1] * f_bott)
        # time branch: Conv1d with kernel k, stride s
        tch = [1] + list(cfg.time_channels)
        self.t_enc = nn.ModuleList(nn.Conv1d(tch[i], tch[i + 1], k, s, (k - s) // 2) for i in range(len(tch) - 1))
        self.t_dec = nn.ModuleList(nn.ConvTranspose1d(tch[i + 1], tch[i], k, s, (k - s) // 2)
                                   for i in reversed(range(len(tch) - 1)))
        self.t_in = nn.Linear(tch[-1], cfg.d_model)
        self.t_out = nn.Linear(cfg.d_model, tch[-1])
        self.transformer = nn.ModuleList(CrossDomainLayer(cfg.d_model, cfg.heads) for _ in range(cfg.transformer_layers))
        for last in (self.f_dec[-1], self.t_dec[-1]):  # identity at init
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    @property
    def time_multiple(self) -> int:
        """Inputs are padded internally to a multiple of this many samples."""
        return max(self.cfg.hop, self.cfg.stride ** len(self.cfg.time_channels))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        B, L = x.shape
        pad = (-L) % self.time_multiple
        xp = F.pad(x, (0, pad))
        scale = xp.pow(2).mean(dim=1, keepdim=True).sqrt() + 1e-5  # (B, 1): level normalisation
        xn = xp / scale
        c = self.cond(emb)  # (B, cond_dim)

        # ---- frequency branch
        z = torch.stft(xn, cfg.n_fft, cfg.hop, window=self.window, return_complex=True)  # (B, F+1, T)
        zf = z[:, : self.n_bins]  # (B, F, T), F = n_fft/2
        h = torch.stack([zf.real, zf.imag], dim=1)  # CaC: (B, 2, F, T)
        skips = []
        for i, (conv, film) in enumerate(zip(self.f_enc, self.f_enc_film)):
            h = conv(h)  # (B, C_i, F / s^(i+1), T)
            if i == 0:
                h = h + self.freq_emb
            h = F.gelu(film(h, c))
            skips.append(h)
        Cb, Fb, T = h.shape[1:]
        f_tok = self.f_in(h.permute(0, 3, 1, 2).reshape(B, T, Cb * Fb))  # (B, T, d)

        # ---- time branch
        g = xn[:, None]  # (B, 1, L)
        t_skips = []
        for conv in self.t_enc:
            g = F.gelu(conv(g))  # (B, C_j, L / s^(j+1))
            t_skips.append(g)
        t_tok = self.t_in(g.transpose(1, 2))  # (B, T_t, d)

        # ---- cross-domain transformer
        f_tok = f_tok + _sinusoid(T, cfg.d_model, x.device)
        t_tok = t_tok + _sinusoid(t_tok.shape[1], cfg.d_model, x.device) * (T / max(t_tok.shape[1], 1))
        for layer in self.transformer:
            f_tok, t_tok = layer(f_tok, t_tok)
        h = self.f_out(f_tok).reshape(B, T, Cb, Fb).permute(0, 2, 3, 1)  # (B, C, F_b, T)
        g = self.t_out(t_tok).transpose(1, 2)  # (B, C, T_t)

        # ---- frequency decoder -> complex mask
        n_dec = len(self.f_dec)
        for i, conv in enumerate(self.f_dec):
            h = h + skips[n_dec - 1 - i]
            h = conv(h)
            if i < n_dec - 1:
                h = F.gelu(self.f_dec_film[i](h, c))
        # deep filter (Schroeter et al., DeepFilterNet 2022): out(f, t) = sum_k M_k(f, t) z(f, t - k);
        # a per-bin complex filter over df_order frames renders long (bass) impulse responses that a
        # single-frame mask cannot. M_0 = 1 + ..., M_k>0 = 0 at init: the identity.
        h = h.view(B, cfg.df_order, 2, self.n_bins, T)  # (B, K, 2, F, T)
        out = zf * torch.complex(1 + h[:, 0, 0], h[:, 0, 1])
        for j in range(1, cfg.df_order):
            out = out + F.pad(zf, (j, 0))[..., :T] * torch.complex(h[:, j, 0], h[:, j, 1])
        zf = out
        z = torch.cat([zf, z[:, self.n_bins:]], dim=1)
        y = torch.istft(z, cfg.n_fft, cfg.hop, window=self.window, length=xp.shape[1])  # (B, L+pad)

        # ---- time decoder -> waveform residual
        for j, conv in enumerate(self.t_dec):
            g = g + t_skips[len(self.t_dec) - 1 - j]
            g = conv(g)
            if j < len(self.t_dec) - 1:
                g = F.gelu(g)
        y = y + g[:, 0]
        return (y * scale)[:, :L]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
