"""The diffusion action proposal: reproduces a known action distribution, saves, and refuses a mismatched model."""

from __future__ import annotations

import json

import pytest
import torch

from forethought.policies import (DiffusionProposal, ProposalConfig, fit_proposal,
                                  load_proposal, save_proposal)
from forethought.models.diffusion import cosine_alpha_bar, ddim_timesteps

F, A, D = 4, 2, 3
PLUS, MINUS = torch.tensor([0.8, -0.5]), torch.tensor([-0.8, 0.5])


class Bimodal(torch.utils.data.Dataset):
    """Constant chunks at PLUS (70%) or MINUS (30%) plus 0.05 noise; ``goal`` says which (+-1), ``z`` is noise."""

    def __init__(self, n: int = 4000) -> None:
        g = torch.Generator().manual_seed(0)
        self.plus = torch.rand(n, generator=g) < 0.7
        centre = torch.where(self.plus[:, None], PLUS, MINUS)
        self.action = centre[:, None, :].expand(n, F, A) + 0.05 * torch.randn(n, F, A, generator=g)
        self.goal = torch.where(self.plus[:, None], torch.ones(n, D), -torch.ones(n, D))
        self.z = torch.randn(n, D, generator=g)

    def __len__(self) -> int:
        return len(self.plus)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"action": self.action[i], "z": self.z[i], "goal": self.goal[i]}


def _config(condition: str, **kw) -> ProposalConfig:
    return ProposalConfig(action_dim=A, horizon=F, latent_dim=D, condition=condition, width=32,
                          action_low=(-1.5, -1.5), action_high=(1.5, 1.5), **kw)


def _modes(chunks: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Fraction of chunks in the PLUS mode, and the mean action of each mode ``(A,)``."""
    plus = chunks[..., 0].mean(-1) > 0
    return plus.float().mean().item(), chunks[plus].mean((0, 1)), chunks[~plus].mean((0, 1))


def test_schedule_and_steps():
    ab = cosine_alpha_bar(100)
    assert ab.shape == (100,) and bool((ab[1:] < ab[:-1]).all()) and ab[0] > 0.999 and ab[-1] < 1e-3
    assert ddim_timesteps(100, 5) == [99, 74, 50, 25, 0] and ddim_timesteps(100, 1) == [99]
    with pytest.raises(ValueError, match="sample_steps"):
        ddim_timesteps(10, 11)


def test_goal_conditioned_proposal_reproduces_the_modes(tmp_path):
    torch.manual_seed(0)
    proposal = DiffusionProposal(_config("goal", depth=1, diffusion_steps=50, sample_steps=8, goal_dropout=0.2))
    fit_proposal(proposal, Bimodal(), tmp_path / "run", steps=200, batch_size=256, lr=3e-3, progress=False)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, D, generator=gen)
    goal = torch.stack([torch.ones(D), -torch.ones(D)])
    chunks = proposal.sample(z, goal, 400, generator=gen)  # (2, 400, F, A)
    assert chunks.shape == (2, 400, F, A)
    frac_plus, mean_plus, _ = _modes(chunks[0])
    frac_minus, _, mean_minus = _modes(chunks[1])
    assert frac_plus > 0.95 and frac_minus < 0.05  # the goal picks the mode
    torch.testing.assert_close(mean_plus, PLUS, atol=0.1, rtol=0)
    torch.testing.assert_close(mean_minus, MINUS, atol=0.1, rtol=0)
    assert chunks.std(dim=2).mean() < 0.12  # constant in time, as the data (noise 0.05)
    assert bool((chunks.abs() <= 1.5 + 1e-6).all())  # clamped to the data's box
    # Saved and loaded, it samples the same chunks from the same noise.
    loaded = load_proposal(save_proposal(proposal, tmp_path / "p"))
    again = loaded.sample(z, goal, 400, generator=torch.Generator().manual_seed(1))
    ref = proposal.sample(z, goal, 400, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(again, ref)
    assert json.loads((tmp_path / "p" / "config.json").read_text())["model_type"] == "forethought.ActionProposal"


@pytest.mark.slow
def test_unconditional_proposal_reproduces_the_mode_fractions(tmp_path):
    torch.manual_seed(0)
    proposal = DiffusionProposal(_config("none", depth=2, diffusion_steps=50, sample_steps=10))
    fit_proposal(proposal, Bimodal(), tmp_path / "run", steps=800, batch_size=256, lr=3e-3, progress=False)
    chunks = proposal.sample(None, None, 3000, generator=torch.Generator().manual_seed(1))[0]
    frac, mean_plus, mean_minus = _modes(chunks)
    assert abs(frac - 0.7) < 0.05
    torch.testing.assert_close(mean_plus, PLUS, atol=0.05, rtol=0)
    torch.testing.assert_close(mean_minus, MINUS, atol=0.05, rtol=0)


def test_config_checks_and_conditions():
    with pytest.raises(ValueError, match="condition"):
        _config("image")
    with pytest.raises(ValueError, match="sample_steps"):
        _config("none", diffusion_steps=5, sample_steps=10)
    p = DiffusionProposal(_config("latent"))
    with pytest.raises(ValueError, match="current latent"):
        p.sample(None, None, 2)
    assert p.sample(torch.zeros(3, D), None, 2).shape == (3, 2, F, A)
    g = DiffusionProposal(_config("goal"))
    assert g.sample(torch.zeros(1, D), None, 5).shape == (1, 5, F, A)  # a goal-conditioned proposal without a goal
