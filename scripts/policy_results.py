"""Summarise policy results rows (written by ``evaluate_policy.py --results``) as the README's table, and check the
locomotion goals.

    python scripts/policy_results.py --results docs/policies/results.json

Rows of runs in a world with a wind or a slope are left out (``symmetry_results.py`` tabulates them).

Rows of the same env, learner, policy and body are averaged over seeds (mean ± standard deviation across seeds of
the per-seed means over the 4 x 4 heading-target grid). The goal check: SET on ``--goal-env`` walks, with a mean
progress of at least ``--goal-progress`` metres per episode and a mean episode length of at least
``--goal-length`` steps; printed as the last line, a JSON object. Before it, one JSON line per suite run with
held-out bodies: the zero-shot transfer check (mean progress of the held-out bodies at least ``--zero-shot-share``
of the trained bodies', seed means). For every student distilled over a suite (``algo`` ``dagger``), a table and
one JSON line: its experts' mean progress over the suite's trained bodies (PPO runs of the teacher policy on each
body alone, within an hour), the student's on those bodies and on the held-out ones, and whether it reaches
``--student-share`` of the experts, ``--zero-shot-share`` of its trained progress and ``--zero-shot-min-progress``.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass

import tyro

from equiworld.agents.config import PPO_NUM_ENVS, RECIPE_KEYS
from equiworld.agents.learners import PPOSettings
from equiworld.envs.morphology import SUITES, resolve_morphologies

from results_file import read_rows, row_key


@dataclass
class Args:
    results: str = "docs/policies/results.json"
    """Results file: a JSON list of rows."""
    env: str | None = None
    """Only this env's rows (a morphology or a suite; a suite's rows come with those of its bodies' experts) and its
    suite check."""
    suites_only: bool = False
    """Print only the per-suite table of students against their experts (and its checks)."""
    goal_env: str = "hopper_5_full"
    """The env of the walking goal."""
    goal_policy: str = "set"
    """The policy of the walking goal."""
    goal_progress: float = 4.0
    """Goal: mean progress toward the target per episode (m)."""
    goal_length: float = 500.0
    """Goal: mean episode length (steps)."""
    goal_seeds: int = 3
    """Goal: seeds a recipe needs for its mean to count (the best recipe with this many is checked; with none, the
    best recipe is shown, not met)."""
    zero_shot_share: float = 0.5
    """Goal of a suite: the held-out bodies' mean progress at least this share of the trained bodies'."""
    student_share: float = 0.8
    """Goal of a suite's student: its mean progress on the trained bodies at least this share of the experts'."""
    zero_shot_min_progress: float = 1.0
    """Goal of a suite's student: its held-out bodies' mean progress at least this (m); a ratio of bodies that do
    not move says nothing."""


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def summarise(rows: list[dict]) -> list[dict]:
    """One entry per (env, algo, policy, recipe, body, split) — the recipe being :data:`RECIPE_KEYS` — seeds
    averaged, in first-seen order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        recipe = row_key(row, RECIPE_KEYS)
        # a distillation's budget is part of its recipe (25 and 45 minutes are two students, not two seeds)
        minutes = row.get("budget_minutes") if row["algo"] == "dagger" else None
        groups[(row["env"], row["algo"], row["policy"], recipe, minutes, row["body"], row["split"])].append(
            row
        )
    out = []
    for (env, algo, policy, recipe, minutes, body, split), members in groups.items():
        out.append(
            {
                "env": env,
                "algo": algo,
                "policy": policy,
                **dict(zip(RECIPE_KEYS, recipe, strict=True)),
                "distill_minutes": minutes,
                "body": body,
                "split": split,
                "seeds": sorted(r["seed"] for r in members),
                "progress": [r["progress"] for r in members],
                "episode_length": [r["episode_length"] for r in members],
                "return": [r["return"] for r in members],
                "env_steps": [r["env_steps"] for r in members],
                "wall_clock_s": [r["wall_clock_s"] or 0.0 for r in members],
                "teacher_hours": max((r.get("teacher_hours") or 0.0 for r in members), default=0.0) or None,
            }
        )
    return out


def markdown(entries: list[dict]) -> str:
    """The README table."""
    lines = [
        "| env | learner | policy | recipe (γ, λ) | body | split | seeds | progress (m) | episode length | return | env steps | "
        "wall-clock (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        recipe = (
            "–" if e.get("gamma") is None else f"{e['gamma']}, {e['gae_lambda'] if e['gae_lambda'] else '–'}"
        ) + (", obs. scaling" if e.get("normalize_observations") else "")
        recipe += f", {e['critic']} critic" if e.get("critic") not in (None, "set") else ""
        recipe += f", from a {e['init']} policy" if e.get("init") else ""
        recipe += f", {e['num_envs']} envs per body" if e.get("num_envs") not in (None, PPO_NUM_ENVS) else ""
        recipe += (
            f", lr {e['learning_rate']:g}"
            if e.get("learning_rate") not in (None, PPOSettings.learning_rate)
            else ""
        )
        recipe += f", target KL {e['target_kl']:g}" if e.get("target_kl") else ""
        if e.get("n_steps") not in (None, PPOSettings.n_steps) or e.get("batch_size") not in (
            None,
            PPOSettings.batch_size,
        ):
            recipe += f", {e['n_steps']} steps x minibatch {e['batch_size']}"
        recipe += (
            f", log σ₀ {e['log_std_init']:g}"
            if e.get("log_std_init") not in (None, PPOSettings.log_std_init)
            else ""
        )
        recipe += ", fixed σ" if e.get("fixed_std") else ""
        if e["algo"] == "dagger":
            recipe += f", from {e['teacher']} teachers" if e.get("teacher") else ""
            recipe += f", {e['distill_minutes']:g} min" if e.get("distill_minutes") else ""
        elif e.get("teacher"):
            recipe += f", imitating {e['teacher']} for {e['imitation_steps'] / 1e6:g}M steps"
        recipe += (
            f", alive bonus {e['alive_bonus']:g} in training" if e.get("alive_bonus") is not None else ""
        )
        recipe += (
            f", progress capped at {e['progress_speed_cap']:g} m/s in training"
            if e.get("progress_speed_cap") is not None
            else ""
        )
        recipe += f", {e['budget_hours']} h budget" if (e.get("budget_hours") or 1) > 1 else ""
        lines.append(
            f"| {e['env']} | {e['algo']} | {e['policy']} | {recipe} | {e['body']} | {e['split']} | {len(e['seeds'])} | "
            f"{_mean_std(e['progress'])} | {_mean_std(e['episode_length'])} | {_mean_std(e['return'])} | "
            f"{statistics.fmean(e['env_steps']) / 1e6:.2f}M | {statistics.fmean(e['wall_clock_s']) / 60:.0f} |"
        )
    return "\n".join(lines)


def goal_check(entries: list[dict], args: Args) -> dict:
    """Whether the goal policy walks on the goal env (seed means of its best PPO recipe from scratch that has
    ``args.goal_seeds`` seeds), and by how much."""
    match = [
        e
        for e in entries
        if e["env"] == args.goal_env
        and e["policy"] == args.goal_policy
        and e["algo"] == "ppo"
        and e["split"] == "train"
        and not e.get("init")  # learnt by PPO from scratch, not started from another policy
        and not e.get("teacher")  # nor guided by one
    ]
    if not match:
        return {"goal": f"{args.goal_policy} walks on {args.goal_env}", "met": False, "missing": True}
    enough = [m for m in match if len(set(m["seeds"])) >= args.goal_seeds]
    e = max(
        enough or match, key=lambda m: statistics.fmean(m["progress"])
    )  # the best recipe with enough seeds
    progress, length = statistics.fmean(e["progress"]), statistics.fmean(e["episode_length"])
    seeds = len(set(e["seeds"]))
    return {
        "goal": f"{args.goal_policy} walks on {args.goal_env}",
        "progress_m": round(progress, 2),
        "episode_length": round(length, 1),
        "seeds": seeds,
        "gamma": e.get("gamma"),
        "gae_lambda": e.get("gae_lambda"),
        **{k: e.get(k) for k in RECIPE_KEYS[2:]},
        "met": progress >= args.goal_progress and length >= args.goal_length and seeds >= args.goal_seeds,
    }


def zero_shot_checks(entries: list[dict], share: float = 0.5) -> list[dict]:
    """Per (env, learner, policy, recipe) with held-out bodies: the mean progress over its trained bodies and over
    its zero-shot bodies (each a mean over seeds), their ratio, and whether it reaches ``share``."""
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: {"train": [], "zero_shot": []})
    for e in entries:
        key = (e["env"], e["algo"], e["policy"], *(e.get(k) for k in RECIPE_KEYS))
        groups[key][e["split"]].append(statistics.fmean(e["progress"]))
    checks = []
    for (env, algo, policy, *recipe), split in groups.items():
        if not split["zero_shot"] or not split["train"]:
            continue
        trained, held_out = statistics.fmean(split["train"]), statistics.fmean(split["zero_shot"])
        ratio = held_out / trained if trained > 0 else float("nan")
        checks.append(
            {
                "goal": f"{policy} on {env}: zero-shot bodies >= {share:g} of the trained bodies' progress",
                "algo": algo,
                **{k: v for k, v in zip(RECIPE_KEYS, recipe, strict=True) if v is not None},
                "trained_progress_m": round(trained, 2),
                "zero_shot_progress_m": round(held_out, 2),
                "ratio": round(ratio, 3),
                "met": bool(trained > 0 and ratio >= share),
            }
        )
    return checks


def is_expert(row: dict, bodies: tuple[str, ...], policy: str | None) -> bool:
    """Whether a results row (or summary entry) is an expert's: PPO from scratch with ``policy`` on one of
    ``bodies`` alone, within an hour, on its own body."""
    return (
        row["env"] in bodies
        and row["body"] == row["env"]
        and row["algo"] == "ppo"
        and row["policy"] == policy
        and not row.get("init")
        and not row.get("teacher")
        and (row.get("budget_hours") or 1) <= 1
    )


def _trained_within(entry: dict, limit_s: float | None) -> list[dict]:
    """``entry`` with only its seeds that trained at most ``limit_s`` seconds (all if ``None``); ``[]`` if none did.
    A student's experts are the runs of its teachers' budget: those no longer than its teachers' mean wall-clock
    (``teacher_hours`` over the suite's bodies) plus 25%, not longer runs of the same policy."""
    if limit_s is None:
        return [entry]
    keep = [i for i, w in enumerate(entry["wall_clock_s"]) if w <= limit_s]
    if not keep:
        return []
    per_seed = ("seeds", "progress", "episode_length", "return", "env_steps", "wall_clock_s")
    return [{**entry, **{k: [entry[k][i] for i in keep] for k in per_seed}}]


def _body_means(entries: list[dict]) -> dict[str, float]:
    """Mean progress per body over the given entries (seed means first, then recipes)."""
    per_body: dict[str, list[float]] = defaultdict(list)
    for e in entries:
        per_body[e["body"]].append(statistics.fmean(e["progress"]))
    return {body: statistics.fmean(values) for body, values in per_body.items()}


def suite_checks(entries: list[dict], args: Args) -> list[dict]:
    """Per student distilled over a suite (env a suite, algo ``dagger``; per policy and recipe): the experts' mean
    over the suite's trained bodies, the student's mean on them and on the held-out bodies, and the goals met."""
    students: dict[tuple, list[dict]] = defaultdict(list)
    for e in entries:
        if e["algo"] == "dagger" and e["env"] in SUITES:
            students[
                (e["env"], e["policy"], e.get("distill_minutes"), *(e.get(k) for k in RECIPE_KEYS))
            ].append(e)
    checks = []
    for (suite, policy, minutes, *recipe), group in students.items():
        recipe_keys = dict(zip(RECIPE_KEYS, recipe, strict=True))
        teacher = recipe_keys["teacher"]
        bodies = resolve_morphologies(suite)
        hours = max((e["teacher_hours"] or 0.0 for e in group), default=0.0)
        limit = 1.25 * 3600 * hours / len(bodies) if hours else None
        experts = _body_means(
            [t for e in entries if is_expert(e, bodies, teacher) for t in _trained_within(e, limit)]
        )
        trained = _body_means([e for e in group if e["split"] == "train"])
        held_out = _body_means([e for e in group if e["split"] == "zero_shot"])
        expert_mean = statistics.fmean(experts.values()) if experts else None
        trained_mean = statistics.fmean(trained.values()) if trained else None
        held_mean = statistics.fmean(held_out.values()) if held_out else None
        of_experts = trained_mean / expert_mean if expert_mean and trained_mean is not None else None
        ratio = held_mean / trained_mean if trained_mean and held_mean is not None else None
        checks.append(
            {
                "suite": suite,
                "student": policy,
                "minutes": minutes,
                "teacher": teacher,
                "seeds": len({s for e in group for s in e["seeds"]}),
                "experts": f"{len(experts)}/{len(bodies)}",
                "experts_progress_m": None if expert_mean is None else round(expert_mean, 2),
                "trained_progress_m": None if trained_mean is None else round(trained_mean, 2),
                "of_experts": None if of_experts is None else round(of_experts, 3),
                "zero_shot_progress_m": None if held_mean is None else round(held_mean, 2),
                "zero_shot_ratio": None if ratio is None else round(ratio, 3),
                "met": bool(
                    len(experts) == len(bodies)
                    and of_experts is not None
                    and of_experts >= args.student_share
                    and ratio is not None
                    and ratio >= args.zero_shot_share
                    and held_mean >= args.zero_shot_min_progress
                ),
            }
        )
    return checks


def suite_markdown(checks: list[dict]) -> str:
    """The per-suite table of :func:`suite_checks`."""
    lines = [
        "| suite | student | teacher | minutes | seeds | experts | experts' mean (m) | student, trained (m) | "
        "of experts | held-out (m) | held-out / trained | goals met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def show(value, percent=False):
        return "–" if value is None else f"{100 * value:.0f}%" if percent else f"{value:.2f}"

    for c in checks:
        lines.append(
            f"| {c['suite']} | {c['student']} | {c['teacher']} | {format(c['minutes'], 'g') if c.get('minutes') else '–'} | {c['seeds']} | "
            f"{c['experts']} | "
            f"{show(c['experts_progress_m'])} | {show(c['trained_progress_m'])} | {show(c['of_experts'], True)} | "
            f"{show(c['zero_shot_progress_m'])} | {show(c['zero_shot_ratio'], True)} | {'yes' if c['met'] else 'no'} |"
        )
    return "\n".join(lines)


def main(args: Args) -> dict:
    # runs in a world with a wind or a slope have their own table (symmetry_results.py)
    rows = [r for r in read_rows(args.results) if r.get("wind") is None and r.get("slope") is None]
    entries = summarise(rows)
    shown = entries
    if args.env is not None:
        envs = {args.env, *(resolve_morphologies(args.env, "all") if args.env in SUITES else ())}
        shown = [e for e in entries if e["env"] in envs]
        if not shown:
            raise SystemExit(f"no rows of env {args.env!r} in {args.results}")
    if not args.suites_only:
        print(markdown(shown))
        for zero_shot in zero_shot_checks(shown, args.zero_shot_share):
            print(json.dumps(zero_shot))
    suites = [c for c in suite_checks(entries, args) if args.env is None or c["suite"] == args.env]
    if suites:
        print(suite_markdown(suites))
        for check in suites:
            print(json.dumps(check))
    check = goal_check(entries, args)
    print(json.dumps(check))
    return check


if __name__ == "__main__":
    main(tyro.cli(Args))
