"""The shipped models: every file matches its card, reproduces its recorded check, and plays; damage is named."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import imageio.v3 as iio
import pytest

from equiworld import pretrained
from equiworld.play.__main__ import Args, main, table

NAMES = pretrained.list()


def test_models_are_shipped_within_the_size_budget():
    kinds = {pretrained.card(n).kind for n in NAMES}
    assert kinds == {"policy", "world_model"}, NAMES
    assert any("set" in n.split("/")[1] for n in NAMES)  # a SET policy
    assert any(n.endswith("/mlp_heading") for n in NAMES)  # an expert
    total = sum(p.stat().st_size for p in pretrained.MODELS_DIR.glob("**/*") if p.is_file())
    assert total <= 30e6, f"{total / 1e6:.1f} MB shipped"


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_model_reproduces_its_cards_check(name):
    card = pretrained.card(name)
    assert card.command.startswith("python ") and card.results, "card without command or results rows"
    assert pretrained.file_sha256(card.path) == card.sha256
    measured = pretrained.replay(name)
    recorded = card.episode
    if card.kind == "policy":
        assert measured["progress"] == pytest.approx(recorded["progress"], rel=0.01, abs=1e-3)
        assert measured["length"] == pytest.approx(recorded["length"], rel=0.01)
    else:
        assert measured["mse"] == pytest.approx(recorded["mse"], rel=0.01)


def test_a_damaged_file_is_refused_by_name(tmp_path, monkeypatch):
    name = next(n for n in NAMES if pretrained.card(n).kind == "policy")
    shutil.copytree(pretrained.MODELS_DIR, tmp_path / "models")
    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path / "models")
    file = pretrained.card(name).path
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{re.escape(name)}.*{file.name}.*damaged"):
        pretrained.load(name)
    file.unlink()
    with pytest.raises(ValueError, match="missing"):
        pretrained.load(name)
    with pytest.raises(ValueError, match="no pretrained model 'nope/x'; shipped: "):
        pretrained.card("nope/x")


def test_play_writes_a_policy_video_and_a_world_model_gif(tmp_path):
    policy = next(n for n in NAMES if pretrained.card(n).kind == "policy")
    summary = main(Args(name=policy, video=str(tmp_path / "p.mp4"), max_steps=40, size=96))
    frames = iio.imread(tmp_path / "p.mp4")
    assert frames.shape[1:] == (96, 96, 3) and len(frames) >= 2 and frames.std() > 1
    assert summary["length"] <= 40
    model = next(n for n in NAMES if pretrained.card(n).kind == "world_model")
    summary = main(Args(name=model, video=str(tmp_path / "w.gif"), frames=8))
    assert len(iio.imread(tmp_path / "w.gif")) == 8 and summary["frames"] == 8


def test_play_lists_every_model_and_refuses_unknown_ones():
    assert all(f"`{n}`" in table() for n in NAMES)
    result = subprocess.run(
        [sys.executable, "-m", "equiworld.play", "no/such"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "no pretrained model 'no/such'" in result.stderr


def test_cards_hold_no_machine_paths():
    for name in NAMES:
        text = json.dumps(pretrained.card(name).to_json())
        assert '"/' not in text, name


def test_the_shipped_experts_teach_every_trained_walker(tmp_path):
    from equiworld.agents.config import find_teacher_models
    from equiworld.agents.teachers import Teachers, load_teachers
    from equiworld.envs.morphology import resolve_morphologies

    bodies = resolve_morphologies("walker++")
    folders = [pretrained.MODELS_DIR / b / "mlp_heading" for b in bodies]
    teachers = Teachers(load_teachers(find_teacher_models(folders)), bodies, num_envs=1)
    assert {t.env for t in teachers.distinct()} == set(bodies)
