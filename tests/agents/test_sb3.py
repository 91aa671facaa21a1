"""stable-baselines3 integration, tested like SB3 tests its own policies: a tiny ``learn()`` per policy name,
seeded determinism, a save/load round trip, a padded multi-morphology VecEnv, and the policy alias."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import TD3
from stable_baselines3.common.vec_env import DummyVecEnv

from equiworld.agents import (
    POLICY_NAMES,
    SOFT_POLICIES,
    ClippedAdam,
    NetworkSizes,
    PublishedSET,
    SETPolicy,
    Sizes,
    TD3Settings,
    make_td3,
    register_td3_policy_aliases,
)
from equiworld.envs.morphology import make_morphology_env

SIZES = NetworkSizes(Sizes(width=16, vector_channels=4, num_layers=1, num_heads=2, hidden=16), (32, 32))
SETTINGS = TD3Settings(learning_starts=40, batch_size=16, buffer_size=1000)


def _obs(env, seed=123):
    obs, _ = env.reset(seed=seed)
    return obs


@pytest.mark.parametrize(
    "policy", [p for p in POLICY_NAMES if p not in ("mlp_fa", *SOFT_POLICIES)]
)  # PPO only
def test_learn_predict_save_load(policy, tmp_path):
    env = make_morphology_env("hopper_3_shin")
    model = make_td3(policy, env, SETTINGS, SIZES, seed=0)
    model.learn(120)
    obs = _obs(env)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == env.action_space.shape and np.all(np.abs(action) <= 1)
    model.save(tmp_path / "model.zip")
    loaded = TD3.load(tmp_path / "model.zip", env=env)
    assert type(loaded.policy) is type(model.policy)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], action)
    if policy.startswith(("set", "transformer")):
        assert loaded.policy.architecture == model.policy.architecture
        assert loaded.policy.sizes == model.policy.sizes
    loaded.learn(10)  # a loaded model keeps training


def test_seeded_training_is_deterministic():
    actions = []
    for _ in range(2):
        env = make_morphology_env("hopper_3_shin")
        model = make_td3("set", env, SETTINGS, SIZES, seed=7)
        model.learn(100)
        actions.append(model.predict(_obs(env), deterministic=True)[0])
    np.testing.assert_array_equal(actions[0], actions[1])
    env = make_morphology_env("hopper_3_shin")
    other = make_td3("set", env, SETTINGS, SIZES, seed=8)
    other.learn(100)
    assert not np.array_equal(other.predict(_obs(env), deterministic=True)[0], actions[0])


def test_set_policy_on_a_padded_multi_morphology_vec_env():
    names = ("hopper_3_shin", "hopper_5_full")
    vec = DummyVecEnv([lambda n=n: make_morphology_env(n, max_limbs=5) for n in names])
    model = make_td3("set", vec, SETTINGS, SIZES, seed=0)
    model.learn(100)
    obs = vec.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (2, 12)
    # the 3-limb body's padded limbs get no action from the actor
    raw = model.policy.actor({k: torch.as_tensor(v) for k, v in obs.items()})
    assert raw[0, 6:].abs().max() == 0 and raw[1, 6:].abs().max() > 0


def test_policy_alias_and_published_defaults():
    register_td3_policy_aliases()
    env = make_morphology_env("hopper_3_shin")
    model = TD3(
        "SETPolicy", env, policy_kwargs={"width": 16, "vector_channels": 4, "num_layers": 1, "hidden": 16}
    )
    assert isinstance(model.policy, SETPolicy)
    default = TD3Settings()
    assert (default.learning_rate, default.batch_size, default.learning_starts) == (1e-4, 256, 5000)
    assert (default.policy_noise, default.noise_clip, default.policy_delay) == (0.2, 0.5, 2)
    assert default.exploration_noise == 0.126 and default.max_grad_norm == 0.1


def test_clipped_adam_clips_the_gradient_norm():
    p = torch.nn.Parameter(torch.zeros(4))
    opt = ClippedAdam([p], max_grad_norm=0.1, lr=1.0)
    p.grad = torch.full((4,), 10.0)
    opt.step()
    assert torch.linalg.vector_norm(p.grad) == pytest.approx(0.1, rel=1e-5)


def test_unknown_policy_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mlp_heading"):
        make_td3("nope", make_morphology_env("hopper_3_shin"))


PUBLISHED_TINY = Sizes(width=16, vector_channels=4, num_layers=1, num_heads=2, hidden=16, gram_channels=3)
"""Test sizes of the published SET (``set_paper``)."""


def test_per_limb_critic_target_matches_the_published_loss():
    """PublishedTD3's critic loss on a fixed batch equals the published one computed by hand: every limb's Q against
    r + gamma (1 - done) min(Q1'_limb, Q2'_limb), averaged over batch and limbs, summed over the twins."""
    env = make_morphology_env("hopper_3_shin")
    settings = TD3Settings(learning_starts=40, batch_size=8, buffer_size=1000, critic_target="per_limb")
    model = make_td3("set_paper", env, settings, NetworkSizes(PUBLISHED_TINY), seed=0)
    assert type(model).__name__ == "PublishedTD3"
    model.learn(60)
    model.target_policy_noise = 0.0  # a deterministic target
    with torch.no_grad():  # random critic weights: per-limb values that differ from limb to limb
        gen = torch.Generator().manual_seed(0)
        for p in [*model.critic.parameters(), *model.critic_target.parameters()]:
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    data = model.replay_buffer.sample(8)
    with torch.no_grad():
        next_actions = model.actor_target(data.next_observations).clamp(-1, 1)
        q1n, q2n = (
            q.limb_values(data.next_observations, next_actions) for q in model.critic_target.q_networks
        )
        target = data.rewards + (1 - data.dones) * model.gamma * torch.minimum(q1n, q2n)
        q1, q2 = (q.limb_values(data.observations, data.actions) for q in model.critic.q_networks)
        expected = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
        mean_target = (
            data.rewards + (1 - data.dones) * model.gamma * torch.minimum(q1n.mean(1), q2n.mean(1))[:, None]
        )
        sb3_loss = ((q1.mean(1, keepdim=True) - mean_target) ** 2).mean() + (
            (q2.mean(1, keepdim=True) - mean_target) ** 2
        ).mean()
    model.replay_buffer.sample = lambda *a, **k: data
    model.train(gradient_steps=1, batch_size=8)
    logged = model.logger.name_to_value["train/critic_loss"]
    assert logged == pytest.approx(expected.item(), rel=1e-5)
    assert abs(logged - sb3_loss.item()) > 1e-6  # and it is not the mean-over-limbs target


def test_limb_td3_learns_saves_and_loads_with_the_published_form(tmp_path):
    from equiworld.agents import PublishedTD3

    env = make_morphology_env("hopper_3_shin")
    settings = TD3Settings(learning_starts=40, batch_size=8, buffer_size=1000, critic_target="per_limb")
    model = make_td3("set_paper", env, settings, NetworkSizes(PUBLISHED_TINY), seed=0)
    model.learn(80)
    model.save(tmp_path / "model.zip")
    loaded = PublishedTD3.load(tmp_path / "model.zip", env=env)
    assert loaded.policy.sizes == PUBLISHED_TINY and loaded.policy.architecture == PublishedSET()
    obs = _obs(env)
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    with pytest.raises(ValueError, match="per_limb"):
        make_td3("mlp", env, settings, SIZES)
    with pytest.raises(ValueError, match="critic_target"):
        TD3Settings(critic_target="max")


def test_paper_preset_has_the_published_sizes():
    """Published (sgrl-set-layers review): actor 4,712,712 and one critic Q 4,380,665 parameters, of which
    66,048 per layer (198,144 per network) are never read; ours has no dead parameters and 2 more scalar inputs
    (a 6-way limb type), i.e. +512 per network."""
    from equiworld.agents import POLICIES, SubequivariantTransformerActor, SubequivariantTransformerCritic

    def count(m):
        return sum(p.numel() for p in m.parameters())

    sizes = NetworkSizes.of_learner("td3", policy="set_paper").set
    assert sizes == Sizes.preset("paper") == NetworkSizes.of_learner("ppo", policy="set_paper").set
    actor, critic = (
        cls(POLICIES["set_paper"], sizes)
        for cls in (SubequivariantTransformerActor, SubequivariantTransformerCritic)
    )
    assert count(actor) == 4_712_712 - 198_144 + 512
    assert count(critic) == 4_380_665 - 198_144 + 512
    assert Sizes.preset("default") == Sizes() and NetworkSizes.of_learner("ppo").set == Sizes.preset(
        "compact"
    )
    with pytest.raises(ValueError, match="paper"):
        Sizes.preset("huge")
    assert NetworkSizes().mlp_layers == (256, 256)  # the published MLP baseline


def test_published_schedule_gives_every_body_its_own_buffer_and_equal_updates():
    """Two bodies, one env each: rounds of one episode per env, then one update per transition, alternating between
    the bodies, every batch from one body's store; warm-up per body."""
    from equiworld.agents import PerBodyReplayBuffer, PublishedTD3, make_vec_env

    venv = make_vec_env(["hopper_3_shin", "hopper_5_full"], 1, backend="dummy", seed=0)
    settings = TD3Settings(
        learning_starts=30, batch_size=8, buffer_size=500, critic_target="per_limb", schedule="published"
    )
    model = make_td3("set", venv, settings, SIZES, seed=0)
    assert isinstance(model, PublishedTD3) and isinstance(model.replay_buffer, PerBodyReplayBuffer)
    assert model.learning_starts == 60 and model.replay_buffer.buffer_size == 500
    assert model.episode_rounds
    seen = []
    sample = model.replay_buffer.sample

    def spy(*args, **kwargs):
        batch = sample(*args, **kwargs)
        seen.append((model.replay_buffer.body, int(batch.observations["limb_mask"].sum(1).unique().item())))
        return batch

    model.replay_buffer.sample = spy
    model.learn(150)
    assert seen, "no updates"
    assert {limbs for body, limbs in seen if body == 0} == {3} and {
        limbs for body, limbs in seen if body == 1
    } == {5}
    counts = np.bincount([body for body, _ in seen], minlength=2)
    assert abs(counts[0] - counts[1]) <= 1
    with pytest.raises(ValueError, match="schedule"):
        TD3Settings(schedule="lockstep")
