"""Shared planner plumbing: input checks, bounds, seeded generators, best-so-far tracking, deadlines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from forethought.planning.proposal import ProposalSampling
from forethought.planning.protocols import Objective, PlanResult


def check_problem(init: Tensor, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Validate ``init (B, H, A)`` and finite bounds ``(A,)``; returns them as float on init's device."""
    if init.ndim != 3:
        raise ValueError(f"init must be (B, H, A) actions, got shape {tuple(init.shape)}")
    A = init.shape[-1]
    low = torch.as_tensor(low, dtype=init.dtype, device=init.device)
    high = torch.as_tensor(high, dtype=init.dtype, device=init.device)
    if low.shape != (A,) or high.shape != (A,):
        raise ValueError(f"low and high must have shape (A={A},), got {tuple(low.shape)} and {tuple(high.shape)}")
    if not (torch.isfinite(low).all() and torch.isfinite(high).all()) or (low > high).any():
        raise ValueError(f"bounds must be finite with low <= high, got low={low.tolist()} high={high.tolist()}")
    if not torch.isfinite(init).all():
        raise ValueError("init contains NaN or inf")
    return init.clamp(low, high), low, high


def check_costs(costs: Tensor, batch: int, n: int) -> Tensor:
    """The objective's output must be ``(B, N)`` and finite where it matters."""
    if costs.shape != (batch, n):
        raise ValueError(f"the objective must return costs of shape (B={batch}, N={n}), got {tuple(costs.shape)}")
    return costs.float().nan_to_num(nan=float("inf"))  # a NaN candidate is never the best


class Seeded:
    """Base of the planners: holds the frozen config and one ``torch.Generator`` per device, seeded
    once from ``config.seed``: two planners built with the same seed give the same plans call after
    call, and consecutive calls draw fresh samples.

    Subclasses set ``config_class``; ``Planner(config)`` or ``Planner(**fields)`` both work.
    """

    config_class: type

    def __init__(self, config: object | None = None, **overrides: object) -> None:
        if config is not None and overrides:
            raise TypeError(f"{type(self).__name__}: pass a config or field overrides, not both")
        self.config = config if config is not None else self.config_class(**overrides)
        self._seed = int(self.config.seed)  # type: ignore[attr-defined]
        self._gens: dict[str, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self._seed)
        return self._gens[key]

    def reseed(self, seed: int | None = None) -> None:
        """Restart the random streams from ``seed`` (default: the configured seed)."""
        if seed is not None:
            self._seed = int(seed)
        self._gens = {}


class Best:
    """Best-so-far per episode over many ``(B, N)`` evaluations."""

    def __init__(self, init: Tensor) -> None:
        B = init.shape[0]
        self.actions = init.clone()
        self.cost = torch.full((B,), float("inf"), device=init.device)
        self.trace: list[Tensor] = []

    def update(self, candidates: Tensor, costs: Tensor) -> None:
        """``candidates (B, N, H, A)``, ``costs (B, N)``."""
        c, i = costs.min(dim=1)  # per episode, never across the batch
        better = c < self.cost
        pick = candidates[torch.arange(candidates.shape[0], device=candidates.device), i]
        self.actions = torch.where(better[:, None, None], pick, self.actions)
        self.cost = torch.where(better, c, self.cost)

    def end_iteration(self) -> None:
        self.trace.append(self.cost.clone())


JITTER = 1.2  # iterations of one decision vary by ~10-20% on a shared CPU: stop while the next one surely fits


def anytime(iterations: int, deadline: float | None, device: torch.device) -> Iterator[int]:
    """``range(iterations)``, cut short by a wall-clock ``deadline`` (a ``time.perf_counter()`` value).

    Anytime planning (a real-time budget per decision): after each iteration the loop stops if the
    next one, estimated to last ``JITTER`` times as long as the one just finished, would end after
    ``deadline``; the first iteration always runs, so a plan always exists. On a GPU each iteration is synchronized
    (only when a deadline is given) so that the clock sees the work, not just its launch.
    """
    if deadline is None:
        yield from range(iterations)
        return
    sync = device.type == "cuda"
    last = time.perf_counter()
    for i in range(iterations):
        yield i
        if sync:
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        took, last = now - last, now
        if now + JITTER * took > deadline:
            return


def score_candidates(objective: Objective, candidates: Tensor) -> Tensor:
    """``objective(candidates (B, N, H, A))`` checked to be ``(B, N)``."""
    return check_costs(objective(candidates), candidates.shape[0], candidates.shape[1])


@dataclass(frozen=True)
class SamplingConfig:
    """The settings CEM and MPPI share; the budget is ``samples * iterations`` objective
    evaluations per episode.

    Attributes:
        samples: candidate sequences per iteration and episode (the mean is one of them).
        iterations: refits of the sampling distribution.
        elites: cheapest candidates the refit uses (default: 10% of samples, at least 2).
        init_std: initial standard deviation in normalized action units.
        min_std: floor of the standard deviation, so the search never freezes completely.
        noise_beta: exponent of the perturbations' power spectrum over time, ``1 / f**beta``
            (:func:`colored_noise`; iCEM): 0 = white noise (the classic method), 2-4 = smooth
            samples that keep a direction for many steps.
        frameskip: env steps per model action (``model.action_dim // env_action_dim``), so that
            colored noise runs over env steps; irrelevant for white noise.
        seed: seed of the planner's random stream.
    """

    samples: int = 300
    iterations: int = 30
    elites: int | None = None
    init_std: float = 1.0
    min_std: float = 0.05
    noise_beta: float = 0.0
    frameskip: int = 1
    seed: int = 0
    method: ClassVar[str] = "sampling"  # the planner's name in error messages

    def __post_init__(self) -> None:
        """Validate the shared fields; fills ``elites``."""
        name, samples, iterations = self.method, self.samples, self.iterations
        if samples < 2 or iterations < 1:
            raise ValueError(f"{name} needs samples >= 2 and iterations >= 1, got {samples}, {iterations}")
        if self.elites is None:
            object.__setattr__(self, "elites", max(2, samples // 10))
        if not 1 <= self.elites <= samples:
            raise ValueError(f"{name} elites must be in [1, samples={samples}], got {self.elites}")
        if not (self.init_std > 0 and 0 <= self.min_std <= self.init_std):
            raise ValueError(f"{name} needs init_std > 0 and 0 <= min_std <= init_std, got {self.init_std}, "
                             f"{self.min_std}")
        if not 0 <= self.noise_beta <= 8:
            raise ValueError(f"{name} noise_beta must be in [0, 8] (0 = white noise; iCEM uses 2-4), got {self.noise_beta}")
        if self.frameskip < 1:
            raise ValueError(f"{name} frameskip must be >= 1 (env steps per model action), got {self.frameskip}")


def colored_noise(shape: tuple[int, ...], beta: float, generator: torch.Generator, device: torch.device,
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """Unit-variance Gaussian noise with power spectrum ``1 / f**beta`` along the second-to-last axis.

    ``shape (..., T, E)``: ``T`` time steps of ``E`` independent channels. ``beta = 0`` is white
    noise; larger values are smoother in time (iCEM, Pinneri et al. 2020, use 2-4), so a sample
    keeps one direction for many steps, which white noise almost never does over long horizons.
    """
    *lead, T, E = shape
    if beta == 0 or T < 2:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    # As the `colorednoise` package (Timmer & Koenig 1995): random Fourier coefficients scaled by
    # f^(-beta/2), the DC and (even T) Nyquist terms real, divided by the exact std so that every
    # time step has unit variance (an empirical per-sample std would ignore the DC part, which is
    # most of the power for beta >= 2). The noise is periodic over T, as in iCEM.
    f = torch.fft.rfftfreq(T, device=device, dtype=torch.float64)  # (F,)
    f[0] = 1.0 / T  # the lowest frequency's amplitude for the DC term (bounded, as in iCEM)
    w = f.pow(-beta / 2.0)
    # Exact variance of a time step: the real DC (and even-T Nyquist) terms count 2 w^2, the others 4 w^2.
    var = 4.0 * w.pow(2).sum() - 2.0 * w[0] ** 2 - (2.0 * w[-1] ** 2 if T % 2 == 0 else 0.0)
    sigma = var.sqrt() / T
    re = torch.randn((*lead, f.shape[0], E), generator=generator, device=device, dtype=torch.float64)
    im = torch.randn((*lead, f.shape[0], E), generator=generator, device=device, dtype=torch.float64)
    re, im = re * w[:, None], im * w[:, None]
    im[..., 0, :] = 0.0
    re[..., 0, :] *= 2**0.5
    if T % 2 == 0:
        im[..., -1, :] = 0.0
        re[..., -1, :] *= 2**0.5
    x = torch.fft.irfft(torch.complex(re, im), n=T, dim=-2) / sigma  # (..., T, E)
    return x.to(dtype)


def gaussian_candidates(mean: Tensor, std: Tensor, samples: int, generator: torch.Generator,
                        low: Tensor, high: Tensor, beta: float = 0.0, frameskip: int = 1) -> Tensor:
    """``(B, samples, H, A)`` candidates around ``mean (B, H, A)``, clamped to the bounds.

    Candidate 0 is the mean itself, so a good warm start is always evaluated. ``beta > 0`` draws
    the perturbations as :func:`colored_noise` over the ``H * frameskip`` env steps (a model action
    is ``frameskip`` env actions concatenated time-major, docs/conventions.md).
    """
    B, H, A = mean.shape
    if A % frameskip:
        raise ValueError(f"action dim {A} is not a multiple of frameskip={frameskip}; set the planner's "
                         "frameskip to model.action_dim // env_action_dim")
    noise = colored_noise((B, samples - 1, H * frameskip, A // frameskip), beta, generator, mean.device, mean.dtype)
    noise = noise.reshape(B, samples - 1, H, A)
    return torch.cat([mean[:, None], mean[:, None] + std[:, None] * noise], dim=1).clamp(low, high)


class GaussianSearch(ProposalSampling, Seeded):
    """The loop CEM and MPPI share: sample around a per-episode Gaussian, score, keep the best,
    refit the Gaussian on each episode's elites. Subclasses define only ``refit``.

    With a proposal (``set_proposal``; the agent calls ``condition`` before each plan), the first
    population is the mean plus ``samples - 1`` proposal chunks instead of Gaussian samples: the
    proposal as the initial distribution (DMPC), refitted from there."""

    def refit(self, mean: Tensor, std: Tensor, elites: Tensor, elite_costs: Tensor) -> tuple[Tensor, Tensor]:
        """New ``(mean, std)``, each ``(B, H, A)``, from ``elites (B, K, H, A)`` sorted by ``elite_costs (B, K)``."""
        raise NotImplementedError

    def plan(self, objective: Objective, init: Tensor, low: Tensor, high: Tensor, *,
             deadline: float | None = None) -> PlanResult:
        """See :class:`~forethought.planning.protocols.Planner`; with a ``deadline`` it is anytime
        (:func:`anytime`): at most ``iterations``, fewer when the wall clock runs out."""
        cfg = self.config
        mean, low, high = check_problem(init, low, high)
        B, H, A = mean.shape
        gen = self.generator(mean.device)
        std = torch.full_like(mean, cfg.init_std)
        best = Best(mean)
        with torch.inference_mode():
            for it in anytime(cfg.iterations, deadline, mean.device):
                if it == 0 and self.proposal is not None:
                    cand = torch.cat([mean[:, None], self.proposal_candidates(cfg.samples - 1, gen, low, high, B, H)], 1)
                else:
                    cand = gaussian_candidates(mean, std, cfg.samples, gen, low, high, cfg.noise_beta, cfg.frameskip)
                costs = score_candidates(objective, cand)  # (B, N)
                best.update(cand, costs)
                best.end_iteration()
                top, idx = costs.topk(cfg.elites, dim=1, largest=False)  # (B, K): per episode, never over B
                elites = torch.gather(cand, 1, idx[:, :, None, None].expand(B, cfg.elites, H, A))
                mean, std = self.refit(mean, std, elites, top)
        return PlanResult(best.actions.clone(), best.cost.clone(), torch.stack(best.trace), cfg.samples * len(best.trace))
