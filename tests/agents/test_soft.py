"""Soft equivariance: the penalty is zero exactly for a symmetric function, the strengths re-scale toward the symmetry
the data keeps, the penalty's gradient joins PPO's loss, and the soft policies train, save and load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from equiworld.agents import MLP, SET, PPOSettings, SoftSettings, SymmetryBreaking, make_ppo, make_vec_env
from equiworld.agents.parts import policy_symmetry
from equiworld.agents.soft import (
    SYMMETRY_TYPES,
    SoftEquivariance,
    group_residuals,
    reflect_across_vertical_plane,
    transform_observation,
    with_penalty_gradient,
)
from equiworld.envs.morphology import MorphologyEnv


def _observations(batch: int = 16) -> dict[str, torch.Tensor]:
    env = MorphologyEnv("hopper_5_full")
    rng = np.random.default_rng(0)
    rows = []
    for b in range(batch):
        obs, _ = env.reset(seed=b)
        for _ in range(3):
            obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        rows.append(obs)
    return {k: torch.as_tensor(np.stack([o[k] for o in rows])) for k in rows[0]}


def test_the_reflection_keeps_its_plane_and_flips_the_normal():
    angle = 0.7
    along = torch.tensor([math.cos(angle), math.sin(angle), 0.3], dtype=torch.float64)
    normal = torch.tensor([-math.sin(angle), math.cos(angle), 0.0], dtype=torch.float64)
    torch.testing.assert_close(reflect_across_vertical_plane(along, angle), along)
    torch.testing.assert_close(reflect_across_vertical_plane(normal, angle), -normal)
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(
        reflect_across_vertical_plane(reflect_across_vertical_plane(x, angle), angle), x
    )
    obs = _observations(4)
    turned = transform_observation(obs, "rotation")
    torch.testing.assert_close(turned["vectors"].norm(dim=-1), obs["vectors"].norm(dim=-1))  # lengths kept
    torch.testing.assert_close(turned["vectors"][..., 2], obs["vectors"][..., 2])  # about the vertical
    assert not torch.allclose(turned["vectors"], obs["vectors"])
    assert turned["scalars"] is obs["scalars"]
    with pytest.raises(ValueError, match="unknown symmetry type 'scale'"):
        transform_observation(obs, "scale")


def test_the_penalty_is_zero_for_a_symmetric_function_and_positive_otherwise():
    obs = _observations()
    invariant = lambda o: o["vectors"].norm(dim=-1).flatten(1)  # noqa: E731 (lengths: kept by both types)
    residuals = group_residuals(invariant, obs, reflection_plane=0.4)
    assert all(float(r) < 1e-20 for r in residuals.values()), residuals
    # the component along the plane's horizontal direction: kept by the reflection, not by rotations
    along = torch.tensor([math.cos(0.4), math.sin(0.4), 0.0], dtype=torch.float64)
    breaks_rotations = lambda o: o["vectors"] @ along  # noqa: E731
    residuals = group_residuals(breaks_rotations, obs, reflection_plane=0.4)
    assert float(residuals["reflection"]) < 1e-20 < 1e-3 < float(residuals["rotation"]), residuals
    # the x component breaks both
    residuals = group_residuals(lambda o: o["vectors"][..., 0], obs, reflection_plane=0.4)
    assert min(float(r) for r in residuals.values()) > 1e-3, residuals


def test_the_strengths_fall_for_the_symmetry_the_data_breaks():
    """A synthetic case: a function that keeps the reflection across its plane and breaks rotations (plus a small
    part that breaks both, so neither residual is zero). After the warm-up the rotation's strength falls by the squared
    ratio of the residuals; the reflection's stays; once re-scaled, nothing changes again."""
    obs = _observations()
    settings = SoftSettings(initial_lambda=2.0, warmup_steps=100, power=2.0, reflection_plane=0.4)
    soft = SoftEquivariance(settings)
    along = torch.tensor([math.cos(0.4), math.sin(0.4), 0.0], dtype=torch.float64)
    f = lambda o: o["vectors"] @ along + 0.05 * o["vectors"][..., 0]  # noqa: E731
    logs = []
    for _ in range(6):  # updates of 40 steps: the re-scaling follows the update that ends at 120 steps
        soft.observe(40)
        penalty = soft.penalty(f, obs)
        assert penalty.ndim == 0 and float(penalty) > 0
        logs.append(soft.end_update())
    assert logs[1]["lambda_rotation"] == 2.0  # 80 steps: still warming up
    assert bool(soft.rescaled)
    r = soft.min_residuals
    assert float(r[0]) > 10 * float(r[1])  # rotation violated far more
    strengths = soft.strengths()
    assert strengths["reflection"] == pytest.approx(2.0)
    assert strengths["rotation"] == pytest.approx(2.0 / (float(r[0]) / float(r[1])) ** 2)
    assert logs[-1]["lambda_rotation"] == strengths["rotation"] and set(logs[-1]) == {
        *(f"residual_{k}" for k in SYMMETRY_TYPES),
        *(f"lambda_{k}" for k in SYMMETRY_TYPES),
    }
    # the first half of the warm-up (the initialisation) does not count toward the residuals kept
    fresh = SoftEquivariance(settings)
    fresh.observe(40)
    fresh.penalty(f, obs)
    fresh.end_update()
    assert torch.isinf(fresh.min_residuals).all()


def test_the_penalty_gradient_joins_the_loss():
    w = torch.tensor([1.5, -0.5], requires_grad=True)
    x = w * 2.0
    penalty = (w**2).sum() * 3.0
    loss = (with_penalty_gradient(x, penalty) ** 2).sum()
    loss.backward()
    expected = 8.0 * w.detach() + 6.0 * w.detach()  # d/dw (2w)^2 + d/dw 3 w^2
    torch.testing.assert_close(w.grad, expected)
    assert float(loss.detach()) == pytest.approx(
        float((x.detach() ** 2).sum())
    )  # the forward value is unchanged


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SoftSettings(initial_lambda=0.0), "initial_lambda=0.0"),
        (lambda: SoftSettings(warmup_steps=-1), "warmup_steps=-1"),
        (lambda: SoftSettings(power=math.nan), "power=nan"),
        (lambda: SoftSettings(reflection_plane=math.inf), "reflection_plane=inf"),
        (lambda: SymmetryBreaking(hidden=0), "hidden=0 must be positive"),
        (lambda: MLP(frame="target", soft=True), "needs frame='world'"),
    ],
)
def test_bad_soft_settings_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_soft_options_belong_to_the_soft_policies():
    venv = make_vec_env(["hopper_3_shin"], 2, seed=0)
    with pytest.raises(ValueError, match="soft_lambda applies to the soft policies"):
        make_ppo("mlp", venv, PPOSettings(soft_lambda=3.0))
    with pytest.raises(ValueError, match="mlp_soft is a PPO policy"):
        from equiworld.agents import policy_class_and_kwargs

        policy_class_and_kwargs("mlp_soft", algo="td3")
    with pytest.raises(TypeError, match="breaking must be a SymmetryBreaking"):
        SET(breaking=64)
    assert policy_symmetry("mlp_soft") == policy_symmetry("set_soft") == "soft"
    venv.close()


@pytest.mark.parametrize("policy", ["mlp_soft", "set_soft"])
def test_soft_policies_train_in_the_wind_rescale_and_round_trip(policy, tmp_path):
    """Real PPO updates in a windy world: the warm-up ends, the strengths are re-scaled from the residuals, and the
    strengths, residuals and step count are saved with the model."""
    venv = make_vec_env(["hopper_3_shin"], 4, seed=0, env_kwargs={"wind": (3.0, 0.5)})
    settings = PPOSettings(
        n_steps=16, batch_size=32, n_epochs=2, soft_warmup_steps=128, soft_reflection_plane=0.5
    )
    model = make_ppo(policy, venv, settings, seed=0)
    soft = model.policy.soft
    assert soft.settings.reflection_plane == 0.5
    if policy == "set_soft":  # the extension starts at zero: exactly the symmetric policy
        assert float(model.policy.breaking_mlp[-1].weight.detach().abs().max()) == 0.0
    model.learn(256)
    assert int(soft.steps) >= 256 and bool(soft.rescaled)
    assert torch.isfinite(soft.min_residuals).all() and float(soft.min_residuals.min()) > 0
    strengths = soft.strengths()
    assert (
        max(strengths.values()) == pytest.approx(1.0) and min(strengths.values()) < 1.0
    )  # the more broken falls
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip")
    assert loaded.policy.soft.strengths() == strengths
    assert loaded.policy.soft.settings == soft.settings
    torch.testing.assert_close(loaded.policy.soft.min_residuals, soft.min_residuals)
    venv.close()
