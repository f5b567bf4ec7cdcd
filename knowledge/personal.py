"""A person's own EQ for a word: a posterior over settings with the population as prior and a bias shared across words.

A *setting* is a float64 (40,) vector of band gains in dB on :data:`knowledge.descriptors.AUDEALIZE_FREQS_HZ` at the
crowd's default amount, in the word's own ("more") space (:mod:`knowledge.population`). "less <word>" evidence is
stored negated, so it lives in the same space.

Model (new here; the population prior is :mod:`knowledge.population`'s Gaussian per word):

- The prior of word w is N(μ_w, Σ_w) (``prior(word)``). Inference runs in a low-dimensional basis U (40, K): the top
  K = :data:`BASIS_DIM` eigenvectors of the mean of the seen words' Σ_w (for the crowd population, whose covariances
  are all (1 − agreement)² · C, exactly the top principal components of C; 5 of them hold 92 % of C's variance).
- Latent preference θ_w = μ_w + U L_w (b + δ_w), L_w = chol(Uᵀ Σ_w U), with a shared bias b ~ N(0, ρ I) and a per-word
  part δ_w ~ N(0, (1 − ρ) I), ρ = :data:`SHARED` (standardised units: +1 sd more bass in "warm" means +1 sd of
  "full"'s own spread in "full"). Marginally θ_w ~ N(μ_w, U Uᵀ Σ_w U Uᵀ), the population within the basis.
- Distance d²(s, θ) = mean over the 40 bands of (s − θ)², dB². Thumbs up/down r = ±1 on a heard setting s:
  P(r) = σ(r β (c − d²)); a pick of s_a over s_j: P = softmax_j(−β d²(s_j, θ)) (Bradley–Terry), β = 1 / τ²,
  τ = :data:`TEMPERATURE_DB`, c = :data:`LIKE_WITHIN_DB`².
- Fit: MAP over x = (b, δ_w for the seen words) with ``scipy.optimize.minimize`` (trust-exact, analytic gradient and
  Hessian), a Laplace approximation (inverse Hessian at the MAP, eigenvalues floored so it stays positive), then
  the posterior mean and covariance by importance sampling with that Gaussian (widened) as proposal: thumbs-down
  evidence makes the posterior ring-shaped, where the MAP is a poor stand-in for the mean.
  An unseen word gets the posterior of b plus the prior of its own δ_w (the shared bias transfers).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Literal

import numpy as np
import scipy.optimize
import scipy.special
from pydantic import BaseModel, Field, field_validator, model_validator

from knowledge.descriptors import AUDEALIZE_FREQS_HZ

N_BANDS = len(AUDEALIZE_FREQS_HZ)
BASIS_DIM = 5
"""K, principal directions of the population covariance the model learns in."""
SHARED = 0.5
"""ρ, the share of a person's deviation that is common to all words (an assumption; see docs/EVALUATION.md)."""
TEMPERATURE_DB = 1.0
"""τ (dB RMS): a setting τ from the ideal loses a pick against the ideal with P = σ(1) ≈ 0.73 (a ~1 dB JND)."""
LIKE_WITHIN_DB = 1.0
"""c = this² dB²: a setting this far (RMS dB) from the ideal gets a thumbs up half the time."""
IS_SAMPLES, IS_WIDEN, IS_MIN_ESS = 1000, 1.5, 30.0
"""Importance sampling of the posterior moments: draws, widening of the Laplace proposal, least effective size."""
EXPLAIN_MIN_DB = 0.5
"""explain() says nothing when the offset is below this everywhere (dB)."""
PROBE_STEP_DB = 2.0
"""How far (RMS dB over the 40 bands) each of the two learning variants lies from the applied setting (:func:`probe_pair`):
2 τ, clearly audible, so a forced choice between them says which side the person is on."""

Prior = Callable[[str], tuple[np.ndarray, np.ndarray]]
"""word -> (mean (40,) dB, covariance (40, 40) dB²) of the population's settings for that word."""


class Evidence(BaseModel):
    """One observation of what a person likes for a word, in the word's "more" space.

    Attributes:
        kind: "rating" (thumbs on a heard setting) or "pick" (a variant chosen over others).
        word: the word (its population word), any case.
        direction: how it was asked; the settings are already in the "more" space ("less" ones negated).
        setting_db: 40 floats, dB: the setting rated, or the variant picked.
        rating: -1 / 1 for a rating, None for a pick.
        rejected_db: the variants not picked (each 40 floats, dB); empty for a rating.
        created_at: when it was observed (UTC).
    """

    kind: Literal["rating", "pick"]
    word: str
    direction: Literal["more", "less"]
    setting_db: list[float]
    rating: int | None = None
    rejected_db: list[list[float]] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @field_validator("setting_db")
    @classmethod
    def _bands(cls, v: list[float]) -> list[float]:
        if len(v) != N_BANDS:
            raise ValueError(f"setting_db needs {N_BANDS} bands, got {len(v)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Evidence:
        if self.kind == "rating" and self.rating not in (-1, 1):
            raise ValueError(f"a rating needs rating -1 or 1, got {self.rating!r}")
        if self.kind == "pick" and (not self.rejected_db or any(len(r) != N_BANDS for r in self.rejected_db)):
            raise ValueError(f"a pick needs at least one rejected setting of {N_BANDS} bands")
        return self


class PersonalModel:
    """A person's posterior over settings for every word (see the module doc). Build with :meth:`fit`."""

    def __init__(self, prior: Prior, basis: np.ndarray | None, words: list[str], mean_x: np.ndarray,
                 cov_x: np.ndarray, shared: float):
        self._prior_fn, self._basis, self._words = prior, basis, words
        self._mean_x, self._cov_x, self._shared = mean_x, cov_x, shared
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def fit(cls, evidence: list[Evidence], prior: Prior, dims: int = BASIS_DIM, shared: float = SHARED,
            temperature_db: float = TEMPERATURE_DB) -> PersonalModel:
        """The posterior from a person's evidence: MAP, Laplace, importance-sampled moments (module doc).

        Args:
            evidence: the person's ratings and picks (any words, any order); empty → the population itself.
            prior: ``word -> (mean (40,), covariance (40, 40))``, the population (e.g. a
                ``PopulationModel.distribution``'s mean and sample covariance).
            dims: K, basis size (1..40).
            shared: ρ in [0, 1), the shared share of the prior variance.
            temperature_db: τ > 0 (dB RMS) of the choice and rating likelihoods.
        Raises:
            ValueError: dims, shared or temperature_db out of range, or a prior of the wrong shape.
        """
        if not 1 <= dims <= N_BANDS or not 0.0 <= shared < 1.0 or not temperature_db > 0:
            raise ValueError(f"need 1 <= dims <= {N_BANDS}, 0 <= shared < 1, temperature_db > 0; got {dims}, {shared}, {temperature_db}")
        model = cls(prior, None, [], np.zeros(0), np.zeros((0, 0)), shared)
        if not evidence:
            return model
        words = sorted({e.word.casefold() for e in evidence})
        mean_cov = np.mean([model._prior(w)[1] for w in words], axis=0)
        model._basis = np.linalg.eigh(mean_cov)[1][:, ::-1][:, :dims].copy()
        model._words = words
        terms = _Terms.build(evidence, model, temperature_db)
        x0 = np.zeros(dims * (1 + len(words)))
        res = scipy.optimize.minimize(terms.value, x0, jac=terms.gradient, hess=terms.hessian, method="trust-exact")
        eigval, eigvec = np.linalg.eigh(terms.hessian(res.x))
        model._mean_x, model._cov_x = _importance_moments(terms, res.x, (eigvec / np.maximum(eigval, 1e-3)) @ eigvec.T)
        return model

    @property
    def has_evidence(self) -> bool:
        """Whether any evidence was fitted (without it the model is the population itself)."""
        return self._basis is not None

    def setting(self, word: str) -> np.ndarray:
        """What to apply next for ``word``: the posterior mean, float64 (40,) dB ("more" space, default amount)."""
        mean, _ = self._prior(word)
        if self._basis is None:
            return mean.copy()
        return mean + self._basis @ self._latent(word)[0]

    def offset(self, word: str) -> np.ndarray:
        """setting − the population mean, float64 (40,) dB (zeros without evidence)."""
        return self.setting(word) - self._prior(word)[0]

    def sample(self, word: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """n posterior samples of the person's setting for ``word``, float64 (n, 40) dB (for variants).

        Without evidence: samples of the population prior (full 40 dimensions).
        """
        mean, cov = self._prior(word)
        if self._basis is None:
            return mean + rng.standard_normal((n, N_BANDS)) @ _sqrt_psd(cov).T
        m, c = self._latent(word)
        return self.setting(word) + (rng.standard_normal((n, len(m))) @ _sqrt_psd(c).T) @ self._basis.T

    def explain(self, word: str) -> str | None:
        """The offset in words, e.g. 'you like more "warm" than most: +1.2 dB around 150 Hz'.

        Returns None when |offset| < EXPLAIN_MIN_DB in every band. "more"/"less" is the sign of the offset's
        projection on the population mean curve; the two largest opposite-signed peaks are named.
        """
        off = self.offset(word)
        if float(np.max(np.abs(off))) < EXPLAIN_MIN_DB:
            return None
        along = float(off @ self._prior(word)[0])
        how = "more" if along > 0 else "less" if along < 0 else "a different"
        peaks = [int(np.argmax(off)), int(np.argmin(off))]
        parts = [f"{off[i]:+.1f} dB around {_hz(AUDEALIZE_FREQS_HZ[i])}" for i in sorted(peaks, key=lambda i: -abs(off[i]))
                 if abs(off[i]) >= EXPLAIN_MIN_DB]
        return f'you like {how} "{word}" than most: ' + ", ".join(parts)

    # --- internals -------------------------------------------------------------------------------

    def _prior(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        key = word.casefold()
        if key not in self._cache:
            mean, cov = self._prior_fn(key)
            mean, cov = np.asarray(mean, dtype=np.float64), np.asarray(cov, dtype=np.float64)
            if mean.shape != (N_BANDS,) or cov.shape != (N_BANDS, N_BANDS):
                raise ValueError(f"prior({word!r}) must give ({N_BANDS},) and ({N_BANDS}, {N_BANDS}), got {mean.shape}, {cov.shape}")
            self._cache[key] = (mean, cov)
        return self._cache[key]

    def _chol(self, word: str) -> np.ndarray:
        """L_w (K, K): Cholesky factor of Uᵀ Σ_w U (jittered)."""
        inner = self._basis.T @ self._prior(word)[1] @ self._basis
        return np.linalg.cholesky(inner + 1e-9 * np.eye(len(inner)) * max(1.0, np.trace(inner)))

    def _map(self, word: str) -> np.ndarray:
        """A_w (K, D): z_w = A_w x for a seen word; for an unseen one only the shared block (b)."""
        k = self._basis.shape[1]
        chol = self._chol(word)
        a = np.zeros((k, k * (1 + len(self._words))))
        a[:, :k] = np.sqrt(self._shared) * chol
        if word.casefold() in self._words:
            i = 1 + self._words.index(word.casefold())
            a[:, i * k:(i + 1) * k] = np.sqrt(1.0 - self._shared) * chol
        return a

    def _latent(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (K,) and covariance (K, K) of z_w (θ_w = μ_w + U z_w)."""
        a = self._map(word)
        cov = a @ self._cov_x @ a.T
        if word.casefold() not in self._words:
            chol = self._chol(word)
            cov = cov + (1.0 - self._shared) * chol @ chol.T
        return a @ self._mean_x, cov


def probe_pair(samples_db: np.ndarray, applied_db: np.ndarray, step_db: float = PROBE_STEP_DB) -> np.ndarray:
    """The two settings of a forced choice that teaches most about a person: ``applied ± step_db · u``, u the first
    principal direction of the posterior samples around the applied setting (where the person's taste is least
    known), scaled to 1 dB RMS over the bands and signed so that the first setting has more of the applied curve
    than the second (when u is orthogonal to it: more low end).

    Under the Bradley–Terry listener (module doc) the pick's log-odds between the two are 4 · step · p / τ², p the
    person's offset from ``applied`` along u (RMS dB): the pick tells which side of the applied setting they are on,
    and the next applied setting (the posterior mean) moves half-way there (a noisy bisection, one direction at a time).

    Args:
        samples_db: float64 (n, 40) dB, n >= 2: the person's posterior samples (:meth:`PersonalModel.sample`).
        applied_db: float64 (40,) dB: what is applied (their posterior mean).
        step_db: > 0, RMS dB of each setting's distance from ``applied_db``.
    Returns:
        float64 (2, 40) dB.
    Raises:
        ValueError: wrong shapes, fewer than 2 samples, or step_db <= 0.
    Source: adaptive paired comparison (2AFC) in the direction of largest posterior variance; new here.
    """
    samples, applied = np.asarray(samples_db, dtype=np.float64), np.asarray(applied_db, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] != N_BANDS or len(samples) < 2 or applied.shape != (N_BANDS,) or not step_db > 0:
        raise ValueError(f"need samples (n >= 2, {N_BANDS}), applied ({N_BANDS},), step_db > 0; "
                         f"got {samples.shape}, {applied.shape}, {step_db}")
    dev = samples - applied
    u = np.linalg.eigh(dev.T @ dev)[1][:, -1]
    u = u / np.sqrt(np.mean(u**2))
    lean = float(u @ applied) or float(u[: N_BANDS // 4].sum())
    u = u if lean >= 0 else -u
    return np.stack([applied + step_db * u, applied - step_db * u])


def _importance_moments(terms: _Terms, x_map: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and covariance of x by self-normalised importance sampling from the Laplace Gaussian widened
    × IS_WIDEN (IS_SAMPLES antithetic draws, fixed seed); the Laplace moments when the effective sample size is
    below IS_MIN_ESS. A thumbs-down on the current mean makes the posterior ring-shaped: its MAP sits off to one
    side while its mean does not move, and the mean is what is applied."""
    eps = np.random.default_rng(0).standard_normal((IS_SAMPLES // 2, len(x_map)))
    eps = np.vstack([eps, -eps])
    x = x_map + IS_WIDEN * eps @ _sqrt_psd(cov).T
    log_w = -terms.values(x) + 0.5 * (eps * eps).sum(1)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    if 1.0 / np.sum(w * w) < IS_MIN_ESS:
        return x_map, cov
    mean = w @ x
    centred = x - mean
    return mean, (centred * w[:, None]).T @ centred


class _Terms:
    """The negative log posterior over x = (b, δ_w…) (standardised), its gradient and Hessian."""

    def __init__(self, ra, rp, rq, rr, pa, pp, pq, pm, temperature_db: float = TEMPERATURE_DB):
        self.ra, self.rp, self.rq, self.rr = ra, rp, rq, rr  # ratings: A (R,K,D), p (R,K), q (R,), r (R,)
        self.pa, self.pp, self.pq, self.pm = pa, pp, pq, pm  # picks: A (P,K,D), p (P,J,K), q (P,J), mask (P,J)
        self.beta = 1.0 / temperature_db**2
        self.c = LIKE_WITHIN_DB**2

    @classmethod
    def build(cls, evidence: list[Evidence], model: PersonalModel, temperature_db: float = TEMPERATURE_DB) -> _Terms:
        """Precomputed projections p = Uᵀ(s − μ_w), q = ‖s − μ_w‖² of every setting in the evidence."""
        u = model._basis
        k, d = u.shape[1], u.shape[1] * (1 + len(model._words))
        ratings = [e for e in evidence if e.kind == "rating"]
        picks = [e for e in evidence if e.kind == "pick"]
        j = max([1 + len(e.rejected_db) for e in picks], default=1)
        ra, rp, rq = np.zeros((len(ratings), k, d)), np.zeros((len(ratings), k)), np.zeros(len(ratings))
        pa, pp, pq = np.zeros((len(picks), k, d)), np.zeros((len(picks), j, k)), np.zeros((len(picks), j))
        pm = np.zeros((len(picks), j), dtype=bool)
        for i, e in enumerate(ratings):
            ra[i] = model._map(e.word)
            r = np.asarray(e.setting_db) - model._prior(e.word)[0]
            rp[i], rq[i] = u.T @ r, r @ r
        for i, e in enumerate(picks):
            pa[i] = model._map(e.word)
            r = np.asarray([e.setting_db, *e.rejected_db]) - model._prior(e.word)[0]
            pp[i, : len(r)], pq[i, : len(r)], pm[i, : len(r)] = r @ u, (r * r).sum(1), True
        return cls(ra, rp, rq, np.array([float(e.rating) for e in ratings]), pa, pp, pq, pm, temperature_db)

    def _rating_parts(self, x):
        z = np.einsum("rkd,d->rk", self.ra, x)
        diff = z - self.rp  # (R, K)
        d2 = (self.rq - 2 * (self.rp * z).sum(1) + (z * z).sum(1)) / N_BANDS
        t = self.rr * self.beta * (self.c - d2)
        return z, diff, t

    def _pick_parts(self, x):
        z = np.einsum("pkd,d->pk", self.pa, x)
        diff = z[:, None, :] - self.pp  # (P, J, K)
        d2 = (self.pq - 2 * np.einsum("pjk,pk->pj", self.pp, z) + (z * z).sum(1)[:, None]) / N_BANDS
        logits = np.where(self.pm, -self.beta * d2, -np.inf)
        prob = np.exp(logits - logits.max(1, keepdims=True))
        return diff, logits, prob / prob.sum(1, keepdims=True)

    def values(self, x: np.ndarray) -> np.ndarray:
        """The negative log posterior (up to a constant) at many points x (S, D): (S,)."""
        z = np.einsum("rkd,sd->srk", self.ra, x)
        d2 = (self.rq - 2 * (self.rp * z).sum(-1) + (z * z).sum(-1)) / N_BANDS
        ratings = np.logaddexp(0.0, -self.rr * self.beta * (self.c - d2)).sum(1)
        z = np.einsum("pkd,sd->spk", self.pa, x)
        d2 = (self.pq - 2 * np.einsum("pjk,spk->spj", self.pp, z) + (z * z).sum(-1)[..., None]) / N_BANDS
        logits = np.where(self.pm, -self.beta * d2, -np.inf)
        picks = (scipy.special.logsumexp(logits, axis=2) - logits[..., 0]).sum(1) if self.pm.size else 0.0
        return 0.5 * (x * x).sum(1) + ratings + picks

    def value(self, x: np.ndarray) -> float:
        _, _, t = self._rating_parts(x)
        _, logits, _ = self._pick_parts(x)
        picks = -logits[:, 0] + scipy.special.logsumexp(logits, axis=1) if len(logits) else np.zeros(0)
        return float(0.5 * x @ x + np.logaddexp(0.0, -t).sum() + picks.sum())

    def gradient(self, x: np.ndarray) -> np.ndarray:
        _, diff, t = self._rating_parts(x)
        g_r = (scipy.special.expit(-t) * self.rr * self.beta * 2 / N_BANDS)[:, None] * diff  # (R, K)
        pdiff, _, prob = self._pick_parts(x)
        grad_a = -self.beta * 2 / N_BANDS * pdiff  # ∇z a_j, (P, J, K)
        g_p = -grad_a[:, 0] + np.einsum("pj,pjk->pk", prob, grad_a)
        return x + np.einsum("rkd,rk->d", self.ra, g_r) + np.einsum("pkd,pk->d", self.pa, g_p)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        _, diff, t = self._rating_parts(x)
        k = diff.shape[1] if diff.size else self.pa.shape[1]
        s = 2 * self.beta / N_BANDS
        h_r = (s * self.rr * scipy.special.expit(-t))[:, None, None] * np.eye(k) + (
            s**2 * scipy.special.expit(t) * scipy.special.expit(-t))[:, None, None] * np.einsum("rk,rl->rkl", diff, diff)
        pdiff, _, prob = self._pick_parts(x)
        grad_a = -s * pdiff
        mean_a = np.einsum("pj,pjk->pk", prob, grad_a)
        h_p = np.einsum("pj,pjk,pjl->pkl", prob, grad_a, grad_a) - np.einsum("pk,pl->pkl", mean_a, mean_a)
        return (np.eye(len(x)) + (self.ra.transpose(0, 2, 1) @ h_r @ self.ra).sum(0)
                + (self.pa.transpose(0, 2, 1) @ h_p @ self.pa).sum(0))


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """A matrix S with S Sᵀ = cov (eigenvalues floored at 0)."""
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    return v * np.sqrt(np.maximum(w, 0.0))


def _hz(f: float) -> str:
    return f"{f / 1000:.3g} kHz" if f >= 1000 else f"{f:.0f} Hz"
