"""WorldModel: presets, verbs, input validation, save/load, and alignment on a known linear system."""

from __future__ import annotations

import json
import math

import pytest
import torch

from forethought.models import DecoderConfig, ModelFolderError, WorldModel, WorldModelConfig
from forethought.objectives import JEPALoss, make_regularizer

PIX = (3, 64, 64)


def _pixel_model(**overrides: object) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(WorldModelConfig.preset("tiny", obs_shape=PIX, action_dim=4, **overrides))


def test_preset_parameter_counts() -> None:
    counts = {n: WorldModel(WorldModelConfig.preset(n, obs_shape=PIX, action_dim=10)).num_parameters() for n in ("tiny", "small", "medium", "base")}
    assert counts["tiny"] < 300_000
    assert 1_000_000 < counts["small"] < 2_000_000 < counts["medium"] < 5_000_000
    assert 15_000_000 <= counts["base"] <= 18_000_000  # LeWM scale
    with pytest.raises(ValueError, match="available: tiny, small, medium, base"):
        WorldModelConfig.preset("huge", obs_shape=PIX, action_dim=2)


@torch.no_grad()
def test_verbs_agree_with_each_other() -> None:
    m = _pixel_model().eval()
    obs = torch.randint(0, 256, (2, 5, *PIX), dtype=torch.uint8)
    acts = torch.randn(2, 4, 4)
    z = m.encode(obs)
    assert z.shape == (2, 5, 32)
    assert m.predict(z[:, :3], acts[:, :3]).shape == (2, 32)
    # rollout = predict repeated on the history extended by its own predictions.
    future = torch.randn(2, 6, 4)
    imagined = m.rollout(z[:, :3], future, past_actions=acts[:, :2])
    assert imagined.shape == (2, 6, 32)
    hist, hist_a = z[:, :3], acts[:, :2]
    for k in range(6):
        hist_a = torch.cat([hist_a, future[:, k : k + 1]], 1)
        nxt = m.predict(hist, hist_a)
        torch.testing.assert_close(imagined[:, k], nxt, rtol=1e-4, atol=1e-5)
        hist = torch.cat([hist, nxt[:, None]], 1)
    one = m.rollout(z[:, :1], future[:, :2])  # a single frame needs no past actions
    assert one.shape == (2, 2, 32)
    torch.testing.assert_close(one[:, 0], m.predict(z[:, :1], future[:, :1]), rtol=1e-4, atol=1e-5)
    # Surprise at step t is the mean squared error of predicting frame t+1 from frames <= t.
    s = m.surprise(obs, acts)
    manual = torch.stack([(m.predict(z[:, : t + 1], acts[:, : t + 1]) - z[:, t + 1]).pow(2).mean(-1)
                          for t in range(4)], 1)
    torch.testing.assert_close(s, manual, rtol=1e-4, atol=1e-6)
    # Causal: a different last frame changes only the last step's surprise.
    changed = obs.clone()
    changed[:, -1] = 255 - changed[:, -1]
    s2 = m.surprise(changed, acts)
    torch.testing.assert_close(s2[:, :-1], s[:, :-1])
    assert (s2[:, -1] - s[:, -1]).abs().min() > 1e-6


def test_input_validation_messages() -> None:
    m = _pixel_model()
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\) uint8 with trailing shape \(3, 64, 64\)"):
        m.encode(torch.zeros(2, 3, 1, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        m.encode(torch.full((1, 1, *PIX), float("nan")))
    z = torch.randn(2, 3, 32)
    with pytest.raises(ValueError, match="A=4"):
        m.predict(z, torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="must have 3 steps"):
        m.predict(z, torch.randn(2, 2, 4))
    with pytest.raises(ValueError, match="D=32"):
        m.rollout(torch.randn(2, 3, 31), torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        m.rollout(z, torch.full((2, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="at least 2 frames"):
        m.surprise(torch.zeros(2, 1, *PIX, dtype=torch.uint8), torch.zeros(2, 0, 4))
    with pytest.raises(ValueError, match="state vector"):
        WorldModelConfig(obs_shape=(5,), action_dim=2)
    with pytest.raises(ValueError, match="pixel observations only"):
        WorldModelConfig.preset("tiny", obs_shape=(5,), action_dim=2, decoder=DecoderConfig())


def test_save_load_bit_identical(tmp_path) -> None:
    m = _pixel_model(decoder=DecoderConfig(channels=(16, 8, 8, 8)))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)  # move weights and BatchNorm stats off their init
    obs = torch.randint(0, 256, (4, 4, *PIX), dtype=torch.uint8)
    acts = torch.randn(4, 3, 4)
    loss, _ = JEPALoss(make_regularizer("sigreg", num_projections=16))(m, obs, acts)
    loss.backward()
    opt.step()
    m.eval()
    norm = {"action": {"mean": [0.0] * 4, "std": [1.0] * 4}, "format_version": 1}
    m.normalization = norm
    path = m.save_pretrained(tmp_path / "wm")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors", "normalization.json"]
    meta = json.loads((path / "config.json").read_text())
    assert meta["format_version"] == 1 and meta["model_type"] == "forethought.WorldModel"
    loaded = WorldModel.from_pretrained(path)
    assert loaded.config == m.config and loaded.normalization == norm
    with torch.no_grad():
        z1, z2 = m.encode(obs), loaded.encode(obs)
        assert torch.equal(z1, z2)
        assert torch.equal(m.rollout(z1[:, :3], acts, acts[:, :2]), loaded.rollout(z2[:, :3], acts, acts[:, :2]))
        assert torch.equal(m.surprise(obs, acts), loaded.surprise(obs, acts))
        assert torch.equal(m.decode(z1), loaded.decode(z2))
    # Saving again over an existing model folder replaces it atomically (no leftovers).
    m.save_pretrained(path)
    assert [p.name for p in tmp_path.iterdir()] == ["wm"]


def test_load_errors_are_clear(tmp_path) -> None:
    m = _pixel_model()
    with pytest.raises(ModelFolderError, match="no model folder"):
        WorldModel.from_pretrained(tmp_path / "missing")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.txt").write_text("x")
    with pytest.raises(ModelFolderError, match="config.json is missing"):
        WorldModel.from_pretrained(tmp_path / "foreign")
    with pytest.raises(ModelFolderError, match="refusing to replace"):
        m.save_pretrained(tmp_path / "foreign")
    path = m.save_pretrained(tmp_path / "wm")
    meta = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ModelFolderError, match="newer"):
        WorldModel.from_pretrained(path)
    (path / "config.json").write_text(json.dumps({**meta, "model_type": "someone.Else"}))
    with pytest.raises(ModelFolderError, match="expected 'forethought.WorldModel'"):
        WorldModel.from_pretrained(path)
    (path / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"], "latent_dim": 16}}))
    with pytest.raises(ModelFolderError, match="does not match config.json"):
        WorldModel.from_pretrained(path)
    (path / "config.json").write_text(json.dumps(meta))
    (path / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="model.safetensors is missing"):
        WorldModel.from_pretrained(path)


# --- alignment on a known linear system (pitfall: predictions regressed onto the wrong frame) ---
S, ACT = 4, 2


def _linear_system() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    th = 0.3
    rot = torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    A = torch.zeros(S, S)
    A[:2, :2] = 0.95 * rot
    A[2:, 2:] = torch.tensor([[0.9, 0.2], [-0.2, 0.9]])
    return A, torch.randn(S, ACT, generator=g) * 0.8


def _batch(A: torch.Tensor, Bm: torch.Tensor, B: int, T: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.randn(B, S, generator=g)
    a = torch.randn(B, T - 1, ACT, generator=g)
    states = [s]
    for t in range(T - 1):  # s_{t+1} = A s_t + B a_t: action[:, t] takes frame t to t+1
        s = s @ A.T + a[:, t] @ Bm.T
        states.append(s)
    return torch.stack(states, 1), a


def test_trained_model_predicts_next_frame_on_linear_system() -> None:
    torch.manual_seed(0)
    A, Bm = _linear_system()
    g = torch.Generator().manual_seed(2)
    m = WorldModel(WorldModelConfig.preset("tiny", obs_shape=(S,), action_dim=ACT))
    loss_fn = JEPALoss(make_regularizer("sigreg", num_projections=128))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for _ in range(250):
        obs, a = _batch(A, Bm, 64, 4, g)
        loss, _ = loss_fn(m, obs, a)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        obs, a = _batch(A, Bm, 512, 6, g)
        z = m.encode(obs)
        pred_err = (m.predict_sequence(z[:, :-1], a) - z[:, 1:]).pow(2).mean()
        copy_err = (z[:, :-1] - z[:, 1:]).pow(2).mean()
        shuffled = a[torch.randperm(512, generator=g)]
        wrong_action_err = (m.predict_sequence(z[:, :-1], shuffled) - z[:, 1:]).pow(2).mean()
        # Surprise is high for transitions inconsistent with the actions.
        assert m.surprise(obs, shuffled).mean() > 5 * m.surprise(obs, a).mean()
    assert pred_err < 0.25 * copy_err, (pred_err, copy_err)
    assert pred_err < 0.25 * wrong_action_err, (pred_err, wrong_action_err)


def test_world_model_implements_the_consumers_protocol() -> None:
    from forethought.models import LatentWorldModel

    model = WorldModel(WorldModelConfig.preset("tiny", obs_shape=(5,), action_dim=2))
    assert isinstance(model, LatentWorldModel)
    assert not isinstance(model.predictor, LatentWorldModel)  # the check is not vacuous
