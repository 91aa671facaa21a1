"""Behaviour kept across refactors of the policies: the first PPO update of the main recipes gives the same losses as
the code that recorded ``fixtures/legacy_reference.json`` (its ``commit``), and checkpoints saved by that code still
load and act as they did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, TD3

import equiworld.agents  # noqa: F401  (the policy aliases)
from equiworld.agents import NetworkSizes, PPOSettings, Sizes, make_ppo, make_vec_env

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = json.loads((FIXTURES / "legacy_reference.json").read_text())
SIZES = NetworkSizes(Sizes.preset("compact", width=16, vector_channels=4, num_layers=1, hidden=16), (32, 32))
SETTINGS = PPOSettings(n_steps=16, batch_size=32, n_epochs=2)
RECIPES = {  # recorded name: (today's policy name, settings)
    "set": ("set", SETTINGS),
    "mlp_heading": ("mlp_heading", SETTINGS),
    "set_context_readout": (
        "set_one_body",
        PPOSettings(n_steps=16, batch_size=32, n_epochs=2, critic="mlp_heading", gamma=0.995),
    ),
}


@pytest.fixture
def one_thread():
    """One torch thread (as the reference was recorded), restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_first_ppo_update_matches_the_recorded_losses(recipe, one_thread):
    policy, settings = RECIPES[recipe]
    venv = make_vec_env("hopper_5_full", 4, seed=0)
    model = make_ppo(policy, venv, settings, SIZES, seed=0)
    model.learn(64)
    venv.close()
    expected = REFERENCE["first_ppo_update"][recipe]
    got = {k: float(model.logger.name_to_value[k]) for k in expected}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-6), (key, got[key], value)


def _load_and_act(learner, ref: dict):
    """The recorded checkpoint ``ref`` loaded by ``learner`` (PPO or TD3), the first observation of its recorded
    env, and the model's deterministic actions there, checked against the recorded ones."""
    model = learner.load(FIXTURES / ref["file"], device="cpu")
    venv = make_vec_env(ref["env"], ref["num_envs"], seed=ref["seed"])
    obs = venv.reset()
    venv.close()
    actions, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(actions, ref["actions"], atol=1e-6)
    return model, obs


def test_ppo_checkpoint_of_the_earlier_layout_loads_and_acts_as_recorded():
    ref = REFERENCE["ppo_checkpoint"]
    model, obs = _load_and_act(PPO, ref)
    values = model.policy.predict_values(model.policy.obs_to_tensor(obs)[0]).detach().numpy()
    np.testing.assert_allclose(values, ref["values"], atol=1e-5)


def test_td3_checkpoint_of_the_earlier_layout_loads_and_acts_as_recorded():
    _load_and_act(TD3, REFERENCE["td3_checkpoint"])


def test_flat_configurations_of_the_earlier_layout_map_to_parts_and_retired_options_are_named():
    from equiworld.agents import SET, BodyContext, FlatTransformer, LimbReadout, PublishedSET
    from equiworld.agents.legacy import RETIRED_AT, current_policy_name, parts_from_flat_config

    flat = {
        "context": 64,
        "context_hidden": 256,
        "readout": "limb_linear",
        "limb_keys": "descriptor",
        "width": 32,
    }
    architecture, sizes = parts_from_flat_config(flat)
    assert architecture == SET(context=BodyContext(64, 256, "descriptor"), readout=LimbReadout("descriptor"))
    assert sizes.width == 32
    assert parts_from_flat_config({"symmetric": False, "fixed_vectors": (), "frame": "target"})[0] == (
        FlatTransformer("target")
    )
    assert parts_from_flat_config({"form": "published", "graph_encodings": "published"})[0] == PublishedSET()
    assert [current_policy_name(n) for n in ("set_keyed", "set_context_readout", "mlp")] == [
        "set_any_body",
        "set_one_body",
        "mlp",
    ]
    for retired in ({"limb_embedding": 8}, {"gram_scaling": "asinh"}, {"descriptor_rbf": 5}):
        with pytest.raises(ValueError, match=f"retired after commit {RETIRED_AT}"):
            parts_from_flat_config(retired)
    with pytest.raises(ValueError, match="fixed_vectors 'lateral'"):
        parts_from_flat_config({"fixed_vectors": ("gravity", "target_direction", "lateral")})
