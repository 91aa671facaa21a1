"""SET actor and critic: O_g(3) invariance of actions and Q values, equivariance of torque vectors, padding
isolation, limb permutations, ablations that must break the symmetry, a closed-loop rotated rollout, and every named
policy tested against the symmetry it declares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equiworld.agents import (
    POLICIES,
    SET,
    BodyContext,
    FlatTransformer,
    LimbReadout,
    NetworkSizes,
    PublishedSET,
    Sizes,
    SubequivariantTransformerActor,
    SubequivariantTransformerCritic,
    policy_class_and_kwargs,
    policy_symmetry,
)
from equiworld.envs.morphology import SUITES, MorphologyEnv, PadMorphology, get_morphology
from equiworld.envs.morphology.env import rotate_state_about_gravity, rotation_about_gravity
from equiworld.equivariant import (
    GravityRotations,
    assert_equivariant,
    equivariance_error,
    permute_tokens,
    rotate_about_gravity,
    rotate_vectors,
)

GROUP = GravityRotations(reflections=True)
TINY = Sizes(width=16, vector_channels=4, num_layers=2, num_heads=2, hidden=16, gram_channels=3)
FORMS = {"compact": SET(), "published": PublishedSET(graph_encodings="published")}
"""The two layer forms of SET (with gravity and the target direction as fixed vectors)."""
MIRROR = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))  # a reflection in the x-z plane
ALL_MORPHOLOGIES = sorted({m for s in SUITES.values() for m in s.all})
MAX_LIMBS = {m: max(get_morphology(n).n_limbs for n in s.all) for s in SUITES.values() for m in s.all}


def _reinit(module: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def _observations(morphology: str, padded: bool, steps: int = 3, batch: int = 2) -> dict[str, torch.Tensor]:
    """A float64 batch of observations after a few random steps (so velocities are non-zero)."""
    env = MorphologyEnv(morphology)
    n_actions = env.action_space.shape[0]
    if padded:
        env = PadMorphology(env, MAX_LIMBS[morphology] + 1)  # at least one padded limb
    rng = np.random.default_rng(0)
    obs_list = []
    for b in range(batch):
        obs, _ = env.reset(seed=b)
        for _ in range(steps):
            action = np.zeros(env.action_space.shape)
            action[:n_actions] = rng.uniform(-1, 1, n_actions)
            obs, *_ = env.step(action)
        obs_list.append(obs)
    return {k: torch.as_tensor(np.stack([o[k] for o in obs_list])) for k in obs_list[0]}


def _garbage_in_padding(obs: dict[str, torch.Tensor], n: int, seed: int) -> torch.Generator:
    """Overwrite the per-limb entries of limbs ``n:`` (the padding) with random numbers, in place; returns the
    generator for further draws."""
    gen = torch.Generator().manual_seed(seed)
    for key in ("vectors", "scalars", "traversal"):
        obs[key][:, n:] = torch.randn(obs[key][:, n:].shape, generator=gen, dtype=torch.float64)
    return gen


def _rotate_obs(R: torch.Tensor, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**obs, "vectors": rotate_vectors(obs["vectors"], R)}


def _actor_out(R: torch.Tensor, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**out, "torque": rotate_vectors(out["torque"], R)}


def _models(fixed=("gravity", "target_direction"), seed: int = 0, form: str = "compact"):
    architecture = SET(fixed) if form == "compact" else PublishedSET(fixed, "published")
    actor = SubequivariantTransformerActor(architecture, TINY).double()
    critic = SubequivariantTransformerCritic(architecture, TINY).double()
    _reinit(actor, seed)
    _reinit(critic, seed + 100)
    return actor, critic


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ALL_MORPHOLOGIES)
def test_actor_and_critic_are_subequivariant(morphology, padded, form):
    """Every morphology of every suite, unpadded (train mode) and padded (eval mode), random re-initialization,
    both layer forms (compact and published)."""
    obs = _observations(morphology, padded)
    actor, critic = _models(seed=int(padded), form=form)
    actor.train(not padded)
    critic.train(not padded)
    report = assert_equivariant(
        actor.limb_outputs, obs, _rotate_obs, _actor_out, GROUP.sample, atol=1e-9, n_elements=4
    )
    assert report.scale > 1e-3
    actions = torch.rand(obs["vectors"].shape[0], 3 * (obs["vectors"].shape[1] - 1), dtype=torch.float64)
    report = assert_equivariant(
        lambda o: critic(o, actions), obs, _rotate_obs, lambda R, y: y, GROUP.sample, atol=1e-9, n_elements=4
    )
    assert report.scale > 1e-3


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("morphology", ["hopper_3_shin", "walker_5_foot", "humanoid_7_left_arm"])
def test_padded_limbs_do_not_change_real_limbs(morphology, form):
    actor, critic = _models(form=form)
    plain = _observations(morphology, padded=False)
    padded = _observations(morphology, padded=True)
    n, m = plain["vectors"].shape[1], padded["vectors"].shape[1]
    assert m > n
    # garbage in the padded slots must not matter
    gen = _garbage_in_padding(padded, n, seed=0)
    for key in ("graph_distance", "ppr", "laplacian"):
        padded[key][:, n:, :] = torch.rand(padded[key][:, n:, :].shape, generator=gen, dtype=torch.float64)
        padded[key][:, :n, n:] = torch.rand(padded[key][:, :n, n:].shape, generator=gen, dtype=torch.float64)
    out_plain, out_padded = actor.limb_outputs(plain), actor.limb_outputs(padded)
    torch.testing.assert_close(out_padded["torque"][:, :n], out_plain["torque"], atol=1e-12, rtol=0)
    torch.testing.assert_close(out_padded["actions"][:, :n], out_plain["actions"], atol=1e-12, rtol=0)
    assert out_padded["actions"][:, n:].abs().max() == 0
    a_plain = actor(plain)
    a_padded = torch.zeros(a_plain.shape[0], 3 * (m - 1), dtype=torch.float64)
    a_padded[:, : a_plain.shape[1]] = a_plain
    a_padded[:, a_plain.shape[1] :] = 0.7  # actions of padded limbs are ignored too
    torch.testing.assert_close(critic(padded, a_padded), critic(plain, a_plain), atol=1e-12, rtol=0)


@pytest.mark.parametrize("morphology", ["walker_7_full", "cheetah_14_full"])
def test_limb_permutations_permute_per_limb_outputs(morphology):
    """Tokens carry no order except through the traversal scalars and structural encodings: permuting the
    non-torso limbs (and those encodings with them) permutes torques and per-limb actions and Q values."""
    actor, critic = _models()
    obs = _observations(morphology, padded=False)
    n = obs["vectors"].shape[1]
    gen = torch.Generator().manual_seed(3)
    perm = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(n - 1, generator=gen)])
    permuted = {}
    for key, value in obs.items():
        value = permute_tokens(value, perm, 1)
        if key in ("graph_distance", "ppr", "laplacian"):
            value = permute_tokens(value, perm, 2)
        permuted[key] = value
    out, out_p = actor.limb_outputs(obs), actor.limb_outputs(permuted)
    for key in ("torque", "actions"):
        torch.testing.assert_close(out_p[key], permute_tokens(out[key], perm, 1), atol=1e-12, rtol=0)
    actions = torch.rand(2, 3 * (n - 1), dtype=torch.float64)
    actions_p = permute_tokens(
        torch.cat([torch.zeros(2, 3, dtype=torch.float64), actions], 1).reshape(2, n, 3), perm, 1
    )
    actions_p = actions_p[:, 1:].flatten(1)
    torch.testing.assert_close(
        critic.limb_values(permuted, actions_p), permute_tokens(critic.limb_values(obs, actions), perm, 1)
    )


def test_transformer_ablation_breaks_the_symmetry():
    obs = _observations("walker_7_full", padded=False)
    actor = SubequivariantTransformerActor(FlatTransformer(), TINY).double()
    _reinit(actor, 0)
    report = equivariance_error(actor, obs, _rotate_obs, lambda R, y: y, GROUP.sample)
    assert report.max_error > 1e-3, report


def _general_rotation(gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def test_set_with_rotated_gravity_breaks_the_symmetry_and_joint_o3_holds():
    """SET is O(3)-equivariant only when gravity turns with the world: rotating every vector but gravity by a
    general rotation (equivalently, giving SET a rotated gravity vector) changes the actions."""
    obs = _observations("hopper_5_full", padded=False)
    actor, _ = _models()

    def rotate_all_but_gravity(R, o):
        vectors = rotate_vectors(o["vectors"], R).clone()
        vectors[:, :, 1] = o["vectors"][:, :, 1]
        return {**o, "vectors": vectors}

    broken = equivariance_error(
        actor.limb_outputs, obs, rotate_all_but_gravity, _actor_out, _general_rotation
    )
    assert broken.max_error > 1e-3, broken
    assert_equivariant(actor.limb_outputs, obs, _rotate_obs, _actor_out, _general_rotation, atol=1e-9)
    # without gravity among its vectors, SET no longer sees the difference (the set_no_g ablation)
    no_g, _ = _models(fixed=("target_direction",))
    assert_equivariant(
        no_g.limb_outputs, obs, rotate_all_but_gravity, _actor_out, _general_rotation, atol=1e-9
    )


@pytest.mark.parametrize(("morphology", "padded"), [("hopper_5_full", False), ("walker_5_foot", True)])
def test_closed_loop_rollouts_rotate_with_the_world(morphology, padded):
    """An untrained float64 SET policy, rolled out from a state and from that state rotated about gravity,
    produces rotated trajectories (every observation vector within 1e-6, same rewards and episode end)."""
    actor, _ = _models(seed=5)
    actor.eval()
    envs = [MorphologyEnv(morphology), MorphologyEnv(morphology)]
    obs_a, _ = envs[0].reset(seed=0)
    envs[1].reset(seed=0)
    angle = 2.1
    R = rotation_about_gravity(angle)
    qpos, qvel = rotate_state_about_gravity(envs[0].data.qpos, envs[0].data.qvel, angle)
    envs[1].set_state(qpos, qvel, target=R[:2, :2] @ envs[0].target)
    obs_b = envs[1]._get_obs()
    if padded:
        wrapped = [PadMorphology(e, 7) for e in envs]
        obs_a, obs_b = wrapped[0]._pad(obs_a), wrapped[1]._pad(obs_b)
    else:
        wrapped = envs

    def act(obs):
        with torch.no_grad():
            return actor({k: torch.as_tensor(v)[None] for k, v in obs.items()})[0].numpy()

    worst, steps, mean_action = 0.0, 0, 0.0
    for steps in range(1, 101):  # noqa: B007
        rotated = rotate_about_gravity(
            torch.as_tensor(obs_a["vectors"]), angle
        ).numpy()  # the env's yaw convention
        worst = max(worst, float(np.abs(obs_b["vectors"] - rotated).max()))
        np.testing.assert_allclose(obs_b["scalars"], obs_a["scalars"], atol=1e-6, rtol=0)
        action_a, action_b = act(obs_a), act(obs_b)
        mean_action = max(mean_action, float(np.abs(action_a).mean()))
        obs_a, r_a, term_a, trunc_a, _ = wrapped[0].step(action_a)
        obs_b, r_b, term_b, trunc_b, _ = wrapped[1].step(action_b)
        assert (term_a, trunc_a) == (term_b, trunc_b)
        assert abs(r_a - r_b) < 1e-6
        if term_a or trunc_a:
            break
    assert worst <= 1e-6, worst
    assert steps >= 50 and mean_action > 1e-3  # a real rollout with a policy that acts


# --- the PPO policy (SETActorCriticPolicy) -------------------------------------------------------------------


def _spaces(obs: dict[str, torch.Tensor]):
    from gymnasium import spaces

    n = obs["vectors"].shape[1]
    space = spaces.Dict(
        {k: spaces.Box(-np.inf, np.inf, tuple(v.shape[1:]), np.float64) for k, v in obs.items()}
    )
    return space, spaces.Box(-1.0, 1.0, (3 * (n - 1),), np.float32)


def _ppo_policy(obs: dict[str, torch.Tensor], seed: int = 0, architecture=FORMS["compact"], **kwargs):
    from equiworld.agents import SETActorCriticPolicy

    space, action_space = _spaces(obs)
    policy = SETActorCriticPolicy(
        space, action_space, lambda _: 1e-3, architecture=architecture, sizes=TINY, **kwargs
    ).double()
    _reinit(policy, seed)
    with torch.no_grad():
        policy.log_std.copy_(torch.tensor([-0.3, 0.1, -0.6]))
    return policy


def _ppo_outputs(policy, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> dict[str, torch.Tensor]:
    dist = policy.get_distribution(obs)
    values, log_prob, entropy = policy.evaluate_actions(obs, actions)
    return {"mean": dist.distribution.mean, "values": values, "log_prob": log_prob, "entropy": entropy}


def _assert_ppo_invariant(policy, obs, actions, sample=GROUP.sample):
    """Mean actions, log-probabilities of ``actions``, entropy and values unchanged under ``sample``'s rotations of
    the observation, to 1e-9 of their magnitude or 1e-9, whichever is larger (float64 rounds relative to the size of a
    number: the random weights of these tests can give log-probabilities of order 1e6)."""
    with torch.no_grad():
        scale = max(float(v.abs().max()) for v in _ppo_outputs(policy, obs, actions).values())
    return assert_equivariant(
        lambda o: _ppo_outputs(policy, o, actions),
        *(obs, _rotate_obs, lambda R, out: out, sample),
        atol=1e-9 * max(1.0, scale),
    )


def _assert_padding_changes_nothing(policy, obs, actions) -> tuple[int, dict[str, torch.Tensor]]:
    """Garbage written into the padded limbs of a padded batch (in place) leaves mean actions, values,
    log-probabilities and entropy unchanged (1e-12); returns the first padded limb and the outputs."""
    n = next(i for i in range(1, obs["limb_mask"].shape[1]) if obs["limb_mask"][0, i] < 0.5)
    before = _ppo_outputs(policy, obs, actions)
    _garbage_in_padding(obs, n, seed=2)
    after = _ppo_outputs(policy, obs, actions)
    for key in ("mean", "values", "log_prob", "entropy"):
        torch.testing.assert_close(after[key], before[key], atol=1e-12, rtol=0)
    return n, before


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ALL_MORPHOLOGIES)
def test_ppo_policy_mean_actions_log_probs_and_values_are_invariant(morphology, padded, form):
    """Hinge actions are invariant scalars: under any rotation about gravity (or vertical-plane reflection) the mean
    actions, the log-probability of any action, the entropy and the value must not change (both layer forms)."""
    obs = _observations(morphology, padded)
    policy = _ppo_policy(obs, seed=int(padded), architecture=FORMS[form])
    gen = torch.Generator().manual_seed(1)
    actions = torch.randn(
        obs["vectors"].shape[0], policy.action_space.shape[0], generator=gen, dtype=torch.float64
    )
    report = _assert_ppo_invariant(policy, obs, actions)
    assert report.scale > 1e-3
    # and the torque vectors behind the mean actions rotate with the world
    assert_equivariant(policy.actor.limb_outputs, obs, _rotate_obs, _actor_out, GROUP.sample, atol=1e-9)


@pytest.mark.parametrize("form", list(FORMS))
def test_ppo_policy_ignores_padding(form):
    plain = _observations("hopper_3_shin", padded=False)
    padded = _observations("hopper_3_shin", padded=True)
    n, m = plain["vectors"].shape[1], padded["vectors"].shape[1]
    policy_plain = _ppo_policy(plain, architecture=FORMS[form])
    policy_padded = _ppo_policy(padded, architecture=FORMS[form])
    policy_padded.load_state_dict(policy_plain.state_dict())
    gen = _garbage_in_padding(padded, n, seed=2)
    a_plain = torch.randn(2, 3 * (n - 1), generator=gen, dtype=torch.float64)
    a_padded = torch.cat([a_plain, torch.full((2, 3 * (m - n)), 5.0, dtype=torch.float64)], dim=1)
    out_plain = _ppo_outputs(policy_plain, plain, a_plain)
    out_padded = _ppo_outputs(policy_padded, padded, a_padded)
    for key in ("values", "log_prob", "entropy"):
        torch.testing.assert_close(out_padded[key], out_plain[key], atol=1e-12, rtol=0)
    torch.testing.assert_close(out_padded["mean"][:, : 3 * (n - 1)], out_plain["mean"], atol=1e-12, rtol=0)
    assert out_padded["mean"][:, 3 * (n - 1) :].abs().max() == 0


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ["hopper_5_full", "humanoid_9_full"])
def test_ppo_policy_with_observation_scaling_stays_invariant(morphology, padded):
    """normalize_observations scales vector slots by invariant numbers only: with non-trivial statistics the mean
    actions, log-probabilities, entropy and values are still invariant; a per-component scale would not be."""
    obs = _observations(morphology, padded)
    policy = _ppo_policy(obs, normalize_observations=True)
    moved = {**obs, "vectors": obs["vectors"] * 3.0, "scalars": obs["scalars"] * 2.0 + 1.0}
    policy.obs_scale.observe(moved)
    policy.obs_scale.commit()
    assert policy.obs_scale.count > 0 and ((policy.obs_scale.vector_ms[[0, 3, 4]] - 1).abs() > 0.1).all()
    actions = torch.randn(obs["vectors"].shape[0], policy.action_space.shape[0], dtype=torch.float64)
    _assert_ppo_invariant(policy, obs, actions)
    # control: scaling x, y and z of the velocities differently breaks the symmetry
    policy.obs_scale.forward = lambda o: {
        **o,
        "vectors": o["vectors"] * torch.tensor([1.0, 3.0, 0.5], dtype=o["vectors"].dtype),
    }
    with pytest.raises(AssertionError, match="not equivariant"):
        _assert_ppo_invariant(policy, obs, actions)


def test_ppo_transformer_ablation_is_not_invariant():
    obs = _observations("walker_7_full", padded=False)
    policy = _ppo_policy(obs, architecture=FlatTransformer())
    R = GROUP.sample(torch.Generator().manual_seed(3), dtype=torch.float64)
    moved = policy.get_distribution(_rotate_obs(R, obs)).distribution.mean
    assert (moved - policy.get_distribution(obs).distribution.mean).abs().max() > 1e-4


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ["hopper_5_full", "walker_7_full", "cheetah_14_full"])
def test_ppo_transformer_in_the_target_frame_is_rotation_invariant(morphology, padded):
    """frame="target" (the transformer_heading policy): the attention stack reads the vectors rotated into the
    target's frame, so mean actions, log-probabilities and values are invariant to rotations about gravity (1e-9),
    but not to vertical-plane reflections (the frame keeps left and right apart)."""
    obs = _observations(morphology, padded)
    policy = _ppo_policy(obs, architecture=FlatTransformer("target"))
    actions = torch.randn(obs["vectors"].shape[0], policy.action_space.shape[0], dtype=torch.float64)
    report = _assert_ppo_invariant(policy, obs, actions, GravityRotations(reflections=False).sample)
    assert report.scale > 1e-3
    mirror = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
    mean = policy.get_distribution(obs).distribution.mean
    assert (policy.get_distribution(_rotate_obs(mirror, obs)).distribution.mean - mean).abs().max() > 1e-4


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ["hopper_5_full", "walker_7_full", "cheetah_14_full"])
def test_ppo_policy_with_canonicalized_mlp_critic_is_rotation_invariant(morphology, padded, monkeypatch):
    """critic="mlp_heading": the value comes from an MLP on the observation rotated into the target's frame, so
    it is invariant to rotations about gravity (to 1e-9) — with the SET actor's mean actions and log-probabilities
    as before — but not to vertical-plane reflections (the frame keeps left and right apart)."""
    obs = _observations(morphology, padded)
    policy = _ppo_policy(obs, critic="mlp_heading", critic_layers=(32, 16))
    assert not hasattr(policy, "value_trunk") and policy.value_mlp[-1].weight.dtype == torch.float64
    actions = torch.randn(obs["vectors"].shape[0], policy.action_space.shape[0], dtype=torch.float64)
    rotations = GravityRotations(reflections=False)
    report = _assert_ppo_invariant(policy, obs, actions, rotations.sample)
    assert report.scale > 1e-3
    mirror = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
    values = policy.predict_values(obs)
    assert (policy.predict_values(_rotate_obs(mirror, obs)) - values).abs().max() > 1e-6
    # control: without the canonicalization the same MLP is not invariant
    from equiworld.agents import baselines

    monkeypatch.setattr(baselines, "rotate_into_target_frame", lambda v: v)
    R = rotations.sample(torch.Generator().manual_seed(4), dtype=torch.float64)
    assert (policy.predict_values(_rotate_obs(R, obs)) - values).abs().max() > 1e-6


def test_ppo_policy_refuses_an_unknown_critic():
    obs = _observations("hopper_3_shin", padded=False)
    with pytest.raises(ValueError, match="unknown critic 'q'"):
        _ppo_policy(obs, critic="q")
    with pytest.raises(ValueError, match="critic_layers"):
        _ppo_policy(obs, critic="mlp_heading", critic_layers=(0,))


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ["hopper_5_full", "walker_7_full", "cheetah_14_full"])
def test_ppo_set_with_whole_body_context_is_rotation_invariant(morphology, padded, monkeypatch):
    """set_context: every limb token also reads an MLP of the whole body rotated into the target's frame. Mean
    actions, log-probabilities and values stay invariant to rotations about gravity (1e-9), not to vertical-plane
    reflections; without the canonicalization the context breaks the symmetry (the control)."""
    obs = _observations(morphology, padded)
    policy = _ppo_policy(obs, architecture=SET(context=BodyContext(8, 16)))
    assert policy.actor.trunk.context.limbs == obs["vectors"].shape[1]
    actions = torch.randn(obs["vectors"].shape[0], policy.action_space.shape[0], dtype=torch.float64)
    rotations = GravityRotations(reflections=False)
    assert _assert_ppo_invariant(policy, obs, actions, rotations.sample).scale > 1e-3
    mirror = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
    mean = policy.get_distribution(obs).distribution.mean
    assert (policy.get_distribution(_rotate_obs(mirror, obs)).distribution.mean - mean).abs().max() > 1e-6
    from equiworld.agents import set_policy

    monkeypatch.setattr(set_policy, "rotate_into_target_frame", lambda v: v)
    R = rotations.sample(torch.Generator().manual_seed(4), dtype=torch.float64)
    assert (policy.get_distribution(_rotate_obs(R, obs)).distribution.mean - mean).abs().max() > 1e-6


def test_ppo_set_with_whole_body_context_ignores_padding_and_checks_its_size():
    plain = _observations("hopper_3_shin", padded=False)
    padded = _observations("hopper_3_shin", padded=True)
    n = plain["vectors"].shape[1]
    policy = _ppo_policy(padded, architecture=SET(context=BodyContext(8, 16)))
    actions = torch.randn(2, policy.action_space.shape[0], dtype=torch.float64)
    before = _ppo_outputs(policy, padded, actions)
    _garbage_in_padding(padded, n, seed=2)
    after = _ppo_outputs(policy, padded, actions)
    for key in ("mean", "values", "log_prob", "entropy"):
        torch.testing.assert_close(after[key], before[key], atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="slot-keyed context was built for 15 limbs, the observation has 3"):
        policy.get_distribution(plain)
    with pytest.raises(ValueError, match="needs limbs"):
        SubequivariantTransformerActor(SET(context=BodyContext(8, 16)), TINY)


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ["hopper_5_full", "walker_7_full", "cheetah_14_full"])
def test_ppo_set_with_per_limb_readout_is_invariant_and_ignores_padding(morphology, padded):
    """set_limb_readout: each limb's actions are a linear map of its invariant features with weights of its own. The
    features are invariants of rotations about gravity and reflections, so mean actions, log-probabilities and values
    are invariant to both (1e-9); garbage in padded limbs changes nothing; the limbs' weights differ."""
    obs = _observations(morphology, padded)
    policy = _ppo_policy(obs, architecture=SET(readout=LimbReadout()))
    assert policy.actor.head.weight.shape[0] == obs["vectors"].shape[1]
    actions = torch.randn(obs["vectors"].shape[0], policy.action_space.shape[0], dtype=torch.float64)
    assert _assert_ppo_invariant(policy, obs, actions).scale > 1e-3
    weight = policy.actor.head.weight
    assert (weight[1] - weight[2]).abs().max() > 1e-3
    if padded:
        n, before = _assert_padding_changes_nothing(policy, obs, actions)
        assert before["mean"][:, 3 * (n - 1) :].abs().max() == 0


ONE_BODY = SET(context=BodyContext(8, 16, "slot"), readout=LimbReadout("slot"))
"""The set_one_body composition at test sizes: the whole-body context and the per-limb readout keyed by slot."""

ANY_BODY = SET(context=BodyContext(8, 16, "descriptor"), readout=LimbReadout("descriptor"))
"""The set_any_body composition at test sizes: the same parts keyed by limb descriptors."""


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ["hopper_5_full", "walker_7_full", "cheetah_14_full"])
def test_ppo_set_one_body_is_rotation_invariant_and_ignores_padding(morphology, padded):
    """set_one_body (the whole-body context with per-limb action weights): invariant to rotations about gravity (1e-9);
    garbage in padded limbs changes nothing; the wrong limb count is refused."""
    obs = _observations(morphology, padded)
    policy = _ppo_policy(obs, architecture=ONE_BODY)
    actions = torch.randn(obs["vectors"].shape[0], policy.action_space.shape[0], dtype=torch.float64)
    rotations = GravityRotations(reflections=False).sample
    assert _assert_ppo_invariant(policy, obs, actions, sample=rotations).scale > 1e-3
    if padded:
        _assert_padding_changes_nothing(policy, obs, actions)
    fewer = {k: v[:, :-1] if k in ("vectors", "scalars", "traversal") else v for k, v in obs.items()}
    with pytest.raises(ValueError, match="limb"):
        policy.actor.trunk.tokens(fewer)


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("morphology", ["hopper_5_full", "walker_7_full", "cheetah_14_full"])
def test_ppo_set_any_body_is_rotation_invariant_and_ignores_padding(morphology, padded):
    """set_any_body: the context and the readout weights are functions of each limb's descriptor (type, traversal),
    not of its slot. Invariant to rotations about gravity (1e-9; not to reflections: the context reads the target's
    frame); garbage in padded limbs changes nothing; no limb count is fixed."""
    obs = _observations(morphology, padded)
    policy = _ppo_policy(obs, architecture=ANY_BODY)
    assert not policy.architecture.slot_keyed and policy.architecture.symmetry == "rotations"
    actions = torch.randn(obs["vectors"].shape[0], policy.action_space.shape[0], dtype=torch.float64)
    rotations = GravityRotations(reflections=False).sample
    assert _assert_ppo_invariant(policy, obs, actions, sample=rotations).scale > 1e-3
    if padded:
        n, before = _assert_padding_changes_nothing(policy, obs, actions)
        assert before["mean"][:, 3 * (n - 1) :].abs().max() == 0


@pytest.mark.parametrize("morphology", ["walker_5_foot", "walker_3_left_knee_right_knee", "hopper_3_shin"])
def test_ppo_set_any_body_reads_bodies_it_was_not_built_for(morphology):
    """One set_any_body policy built for the padded 7-limb walker reads a body of another limb count, unpadded, and
    gives it the same mean actions and values as the same body padded (1e-12); the slot-keyed set_one_body refuses
    it."""
    walker = _observations("walker_7_full", padded=False)
    policy = _ppo_policy(walker, architecture=ANY_BODY)
    plain = _observations(morphology, padded=False)
    n = plain["vectors"].shape[1]
    padded = _observations(morphology, padded=True)  # padded to its suite's largest body + 1
    with torch.no_grad():
        mean_plain = policy.get_distribution(plain).distribution.mean
        mean_padded = policy.get_distribution(padded).distribution.mean
        values_plain, values_padded = policy.predict_values(plain), policy.predict_values(padded)
    assert mean_plain.shape[1] == 3 * (n - 1) and mean_plain.abs().max() > 1e-3
    torch.testing.assert_close(mean_padded[:, : 3 * (n - 1)], mean_plain, atol=1e-12, rtol=0)
    torch.testing.assert_close(values_padded, values_plain, atol=1e-12, rtol=0)
    slot_keyed = _ppo_policy(walker, architecture=ONE_BODY)
    with pytest.raises(ValueError, match="limb"):
        slot_keyed.get_distribution(plain)


def test_parts_check_their_own_arguments():
    """Each part refuses a bad value of its own options with the valid ones; a combination that is not a
    composition (a readout that is not one, a context on the flat transformer) cannot be written."""
    cases = [
        (lambda: FlatTransformer(frame="torso"), ValueError, "unknown frame 'torso'; valid: world, target"),
        (lambda: SET(fixed_vectors=("lateral",)), ValueError, r"unknown fixed vectors \['lateral'\]"),
        (lambda: PublishedSET(graph_encodings="none"), ValueError, "unknown graph_encodings 'none'"),
        (lambda: LimbReadout(keys="name"), ValueError, "unknown keys 'name'; valid: slot, descriptor"),
        (lambda: BodyContext(width=0), ValueError, "width=0 must be positive"),
        (lambda: Sizes(num_heads=-1), ValueError, "num_heads=-1 must be positive"),
        (lambda: Sizes.preset("huge"), ValueError, "unknown preset 'huge'"),
        (lambda: SET(readout="vector"), TypeError, "readout must be a TorqueReadout or a LimbReadout"),
        (lambda: SET(context=8), TypeError, "context must be a BodyContext or None"),
        (lambda: FlatTransformer(context=BodyContext()), TypeError, "unexpected keyword"),
        (lambda: policy_symmetry("set_lateral"), ValueError, "unknown policy 'set_lateral'"),
    ]
    for make, error, message in cases:
        with pytest.raises(error, match=message):
            make()
    with pytest.raises(ValueError, match="num_heads=3 must divide width=16"):
        SubequivariantTransformerActor(SET(), Sizes(width=16, vector_channels=6, num_heads=3))


def _named_policy(name: str, obs: dict[str, torch.Tensor]):
    """The PPO policy of a named policy at test sizes, float32, re-initialized at random (every parameter)."""
    policy_class, kwargs = policy_class_and_kwargs(name, NetworkSizes(TINY, (32, 32)), algo="ppo")
    space, action_space = _spaces(obs)
    policy = policy_class(space, action_space, lambda _: 1e-3, **kwargs)
    _reinit(policy, 0)
    policy.set_training_mode(False)  # as it acts (an augmenting policy turns its inputs only while it trains)
    return policy


def _mean_and_values(policy, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {"mean": policy.get_distribution(obs).distribution.mean, "values": policy.predict_values(obs)}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_named_policy_has_exactly_the_symmetry_it_declares(name):
    """Mean actions and values (float32, 1e-4 of their scale) are invariant to rotations about gravity when the policy
    declares them, and to vertical-plane reflections when it declares those too; where it declares no such symmetry,
    the transformation changes them (by more than 1% of their scale): the declaration is exact both ways."""
    obs = _observations("walker_7_full", padded=False)
    policy = _named_policy(name, obs)
    declared = policy_symmetry(name)
    rotations = GravityRotations(reflections=False).sample

    def reflections(gen, dtype=torch.float64):  # a reflection in a vertical plane, turned at random
        return rotations(gen, dtype) @ MIRROR.to(dtype)

    def check(sample, kept: bool) -> None:
        args = (lambda o: _mean_and_values(policy, o), obs, _rotate_obs, lambda R, y: y, sample)
        report = equivariance_error(*args)
        assert report.scale > 1e-2, report
        if kept:
            assert report.max_error <= 1e-4 * report.scale, report
        else:
            assert report.max_error > 1e-2 * report.scale, report

    check(rotations, kept=declared in ("rotations", "rotations_and_reflections"))
    check(reflections, kept=declared == "rotations_and_reflections")


def test_frame_averaging_is_the_mean_over_the_turned_target_frames():
    """mlp_fa's mean action is the mean of its MLP over the target frame turned by 0, 90, 180 and 270 degrees (the
    frame), which turning the observation by 90 degrees inside the canonical frame would leave unchanged."""
    from equiworld.agents import MLP
    from equiworld.agents.baselines import FrameAveragedExtractor

    obs = _observations("walker_7_full", padded=False)
    policy = _named_policy("mlp_fa", obs)
    assert isinstance(policy.features_extractor, FrameAveragedExtractor) and policy.copies == 4
    with torch.no_grad():
        features = policy.extract_features(obs, policy.features_extractor)  # (4 B, F)
        latent = policy.mlp_extractor.forward_actor(features)
        per_copy = policy.action_net[0](latent).reshape(4, -1, policy.action_space.shape[0])
        mean = policy.get_distribution(obs).distribution.mean
    torch.testing.assert_close(mean, per_copy.mean(0))
    assert (per_copy[0] - per_copy[1]).abs().max() > 1e-3  # the copies differ: a real average
    with pytest.raises(ValueError, match=r"mlp_fa is a PPO policy"):
        policy_class_and_kwargs("mlp_fa", algo="td3")
    with pytest.raises(ValueError, match="needs frame='target'"):
        MLP(frame="world", average=2)
    with pytest.raises(ValueError, match="average must be an integer >= 1"):
        MLP(frame="target", average=0)


def test_augmentation_turns_the_observations_only_while_training():
    from equiworld.agents import MLP
    from equiworld.agents.baselines import RandomRotationExtractor

    obs = _observations("walker_7_full", padded=False)
    policy = _named_policy("mlp_aug", obs)
    assert isinstance(policy.features_extractor, RandomRotationExtractor)
    assert policy_symmetry("mlp_aug") == "rotations_in_expectation"
    extractor = policy.features_extractor
    with torch.no_grad():
        plain = extractor(obs)
        torch.testing.assert_close(extractor(obs), plain)  # acting: the world as it is
        extractor.train()
        turned, again = extractor(obs), extractor(obs)
    assert not torch.allclose(turned, again)  # a new angle each time
    vectors = plain.shape[1] - (turned != plain).any(0).logical_not().sum()  # only vector entries change
    assert 0 < vectors < plain.shape[1]
    # the turned features keep every vector's length: a rotation about gravity, not noise
    n = obs["vectors"][0].numel()
    start = [k for k in sorted(obs)].index("vectors")
    offset = sum(obs[k][0].numel() for k in sorted(obs)[:start])
    norms = lambda f: f[:, offset : offset + n].reshape(f.shape[0], -1, 3).norm(dim=-1)  # noqa: E731
    torch.testing.assert_close(norms(turned), norms(plain))
    with pytest.raises(ValueError, match="augmentation turns world-frame observations"):
        MLP(frame="target", augment=True)


@pytest.mark.parametrize("name", ["mlp_fa", "set_soft"])
def test_frame_averaging_and_a_fresh_soft_set_are_exactly_invariant_in_float64(name):
    """mlp_fa is invariant to rotations about gravity to 1e-9 in float64 (the frame moves with the world); set_soft
    starts exactly as symmetric as set_one_body (its extension's output layer is zero until training moves it)."""
    obs = _observations("walker_7_full", padded=False)
    policy_class, kwargs = policy_class_and_kwargs(name, NetworkSizes(TINY, (32, 32)), algo="ppo")
    space, action_space = _spaces(obs)
    policy = policy_class(space, action_space, lambda _: 1e-3, **kwargs).double()
    policy.set_training_mode(False)

    def outputs(
        o,
    ):  # SB3's preprocessing casts Box observations to float32: the networks are called on float64
        if name == "set_soft":
            return _mean_and_values(policy, o)
        with torch.no_grad():
            pi, vf = policy.mlp_extractor(policy.features_extractor(o))
            return {"mean": policy.action_net(pi), "values": policy.value_net(vf)}

    report = equivariance_error(
        outputs,
        obs,
        _rotate_obs,
        lambda R, y: y,
        GravityRotations(reflections=False).sample,
    )
    assert report.scale > 1e-3 and report.max_error <= 1e-9, report
