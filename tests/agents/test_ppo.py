"""PPO over the batched env: a short ``learn()`` per policy, seeded determinism, save/load, the policy alias, and the
reward-only normalization that keeps the symmetry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import equiworld.agents  # noqa: F401  (registers PPO("SETPolicy", ...))
from equiworld.agents import (
    NetworkSizes,
    PPOSettings,
    SETActorCriticPolicy,
    Sizes,
    make_ppo,
    make_vec_env,
)

SIZES = NetworkSizes(
    Sizes(width=16, vector_channels=4, num_layers=1, num_heads=2, hidden=16, gram_channels=3), (32, 32)
)
SETTINGS = PPOSettings(n_steps=16, batch_size=32, n_epochs=2)


def _params(model: PPO) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()])


@pytest.mark.parametrize(
    "policy",
    [
        *("set", "mlp", "mlp_heading", "transformer", "transformer_heading"),
        *("set_one_body", "set_any_body", "set_paper"),
    ],
)
def test_ppo_learns_a_few_hundred_steps(policy, tmp_path):
    venv = make_vec_env("hopper_3_shin", 4, seed=0)
    model = make_ppo(policy, venv, SETTINGS, SIZES, seed=0)
    before = _params(model).clone()
    model.learn(320)
    assert model.num_timesteps == 320
    after = _params(model)
    assert torch.isfinite(after).all() and (after - before).abs().max() > 0
    obs = venv.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (4, 6)
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert type(loaded.policy) is type(model.policy)
    again, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_allclose(again, action, atol=1e-6)
    venv.close()


def test_ppo_is_seeded_and_deterministic():
    runs = []
    for _ in range(2):
        venv = make_vec_env("hopper_3_shin", 2, seed=3)
        model = make_ppo("set", venv, SETTINGS, SIZES, seed=3)
        model.learn(64)
        runs.append(_params(model))
        venv.close()
    torch.testing.assert_close(runs[0], runs[1], atol=0, rtol=0)


def test_ppo_on_a_padded_suite_and_the_policy_alias():
    venv = make_vec_env("hopper++", 2, seed=0)
    model = PPO(
        "SETPolicy",
        venv,
        n_steps=8,
        batch_size=24,
        n_epochs=1,
        policy_kwargs={"width": 16, "vector_channels": 4, "num_layers": 1, "hidden": 16},
    )
    assert isinstance(model.policy, SETActorCriticPolicy)
    model.learn(48)
    # padded action entries carry no log-probability: changing them leaves it unchanged
    obs, _ = model.policy.obs_to_tensor(venv.reset())
    mask = obs["action_mask"]
    actions = torch.zeros_like(mask)
    _, log_prob, _ = model.policy.evaluate_actions(obs, actions)
    _, moved, _ = model.policy.evaluate_actions(obs, actions + 3.0 * (1 - mask))
    torch.testing.assert_close(log_prob, moved)
    venv.close()


def test_reward_normalization_leaves_observations_raw():
    venv = make_vec_env("hopper_3_shin", 2, seed=0)
    model = make_ppo("set", venv, SETTINGS, SIZES, seed=0)
    wrapper = model.get_vec_normalize_env()
    assert isinstance(wrapper, VecNormalize) and wrapper.norm_reward and not wrapper.norm_obs
    venv.close()


def test_bad_policy_names_and_sde_are_refused():
    venv = make_vec_env("hopper_3_shin", 1, seed=0)
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        make_ppo("nope", venv)
    with pytest.raises(ValueError, match="use_sde"):
        PPO(SETActorCriticPolicy, venv, use_sde=True)
    with pytest.raises(TypeError, match=r"unexpected keywords \['widht'\]"):
        PPO(SETActorCriticPolicy, venv, policy_kwargs={"widht": 8})
    venv.close()


def test_invariant_observation_scale_learns_commits_per_rollout_and_is_saved(tmp_path):
    """normalize_observations: statistics gathered while acting are applied at the start of the next rollout (so
    acting and the epochs after it share them), are real (RMS of vector norms, scalar moments over real limbs),
    and travel in the saved policy."""
    from dataclasses import replace

    venv = make_vec_env("hopper_3_shin", 4, seed=0)
    model = make_ppo("set", venv, replace(SETTINGS, normalize_observations=True), SIZES, seed=0)
    scale = model.policy.obs_scale
    assert scale.count == 0
    model.learn(64)  # one rollout: gathered, not yet committed
    assert scale.count == 0 and scale._pending is not None
    model.learn(64, reset_num_timesteps=False)  # the second rollout starts by committing the first one's
    assert scale.count == 64 * 3  # limbs of the 64 observations
    assert 0.05 < scale.vector_ms[0] < 5.0 and scale.vector_ms[1] == pytest.approx(
        9.81**2
    )  # mean squared norms
    assert (scale.scalar_var >= 0).all() and (
        scale.scalar_var > 0
    ).sum() >= 10  # limb-type columns may be constant
    obs = (
        venv.reset()
    )  # (predict switches the policy to acting: that commits the second rollout's statistics)
    raw = {k: torch.as_tensor(v) for k, v in obs.items()}
    scaled = scale(raw)["vectors"]
    torch.testing.assert_close(
        scaled[:, :, 1:3], raw["vectors"][:, :, 1:3]
    )  # gravity, target direction: as they are
    torch.testing.assert_close(scaled[:, :, 0], raw["vectors"][:, :, 0] / scale.vector_ms[0].sqrt().float())
    action, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert loaded.policy.normalize_observations and loaded.policy.obs_scale.count == scale.count == 128 * 3
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], action, atol=1e-6)
    with pytest.raises(ValueError, match="normalize_observations"):
        make_ppo("mlp", venv, replace(SETTINGS, normalize_observations=True), SIZES)
    venv.close()


def test_set_actor_with_canonicalized_mlp_critic_learns_and_round_trips(tmp_path):
    """critic="mlp_heading": PPO trains the SET actor beside an MLP value on target-frame inputs; the critic is
    saved with the policy and rebuilt by PPO.load; it applies to the transformer policies only."""
    from dataclasses import replace

    venv = make_vec_env("hopper_3_shin", 4, seed=0)
    model = make_ppo("set", venv, replace(SETTINGS, critic="mlp_heading"), SIZES, seed=0)
    assert model.policy.critic == "mlp_heading" and not hasattr(model.policy, "value_trunk")
    before = [p.detach().clone() for p in model.policy.value_mlp.parameters()]
    model.learn(320)
    assert all(
        (p - b).abs().max() > 0 for p, b in zip(model.policy.value_mlp.parameters(), before, strict=True)
    )
    obs = venv.reset()
    tensors, _ = model.policy.obs_to_tensor(obs)
    values = model.policy.predict_values(tensors)
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert loaded.policy.critic == "mlp_heading" and loaded.policy.critic_layers == (256, 256)
    torch.testing.assert_close(loaded.policy.predict_values(tensors), values)
    with pytest.raises(ValueError, match="critic applies to the transformer policies"):
        make_ppo("mlp", venv, replace(SETTINGS, critic="mlp_heading"), SIZES)
    venv.close()


@pytest.mark.parametrize("learner", ["ppo", "td3"])
def test_learn_without_a_tensorboard_folder_writes_nothing_to_the_temp_directory(
    learner, tmp_path, monkeypatch
):
    import tempfile

    from equiworld.agents import TD3Settings, make_td3

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    venv = make_vec_env("hopper_3_shin", 2, seed=0)
    if learner == "ppo":
        model = make_ppo("set", venv, PPOSettings(n_steps=8, batch_size=16, n_epochs=1), SIZES, seed=0)
    else:
        model = make_td3("set", venv, TD3Settings(learning_starts=4, batch_size=8), SIZES, seed=0)
    model.learn(16)
    venv.close()
    assert model.num_timesteps == 16
    assert list(tmp_path.iterdir()) == []  # SB3's default logger would leave an SB3-<time> folder here


def test_a_fixed_noise_stays_fixed_through_updates_and_a_resume(tmp_path):
    """--no-learn-std (MetaMorph's fixed standard deviation): PPO updates every weight but the noise's log std, and a
    model loaded for a resume is frozen again; the default learns it."""
    from dataclasses import replace

    from equiworld.agents import fix_std

    venv = make_vec_env("hopper_3_shin", 4, seed=0)
    fixed = make_ppo(
        "set_any_body", venv, replace(SETTINGS, learn_std=False, log_std_init=np.log(0.9)), SIZES
    )
    learned = make_ppo("set_any_body", venv, replace(SETTINGS, log_std_init=np.log(0.9)), SIZES)
    before = _params(fixed)
    for model in (fixed, learned):
        model.learn(128)
    np.testing.assert_allclose(fixed.policy.log_std.detach().numpy(), np.log(0.9), rtol=1e-6)
    assert not np.allclose(learned.policy.log_std.detach().numpy(), np.log(0.9))
    assert not torch.allclose(_params(fixed), before)  # the rest learns
    fixed.save(tmp_path / "fixed.zip")
    resumed = fix_std(PPO.load(tmp_path / "fixed.zip", env=venv))
    resumed.learn(64, reset_num_timesteps=False)
    np.testing.assert_allclose(resumed.policy.log_std.detach().numpy(), np.log(0.9), rtol=1e-6)
    venv.close()
