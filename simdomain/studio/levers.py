"""A scenario's levers as a form, and a form's changes as ``--set`` overrides.

Every change the page makes is a ``path=value`` override, exactly as the CLI's
``--set``; validation, error messages and the saved YAML all go through
:mod:`simdomain.scenario.io`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import shlex
from typing import Any

import yaml

from simdomain.errors import InputError, Problem
from simdomain.scenario.io import apply_overrides, validate_scenario


def levers(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The form of a raw scenario: one entry per lever, grouped for the page.

    Each lever has ``path`` (as for ``--set``), ``label``, ``group``, ``kind``
    (``int``, ``number``, ``share``, ``money`` or ``date``), ``value`` and, for sliders,
    ``min``, ``max`` and ``step``; a channel's spend also has ``switch`` (on/off).
    """
    out: list[dict[str, Any]] = []

    def add(group: str, path: str, label: str, value: Any, kind: str, **extra: Any) -> None:
        if value is None:
            return
        if isinstance(value, dt.date):
            value = value.isoformat()
        out.append({"group": group, "path": path, "label": label, "value": value,
                    "kind": kind, **extra})

    out.append({"group": "Horizon", "path": "horizon_days", "label": "days simulated",
                "value": raw.get("horizon_days"), "kind": "int", "min": 1, "max": 3660,
                "step": 1})
    touch = raw.get("touch_policy") or {}
    one = touch.get("one_to_one") or {}
    add("Touches", "touch_policy.one_to_one.per_week", "1:1 messages a week",
        one.get("per_week", 2), "int", min=0, max=7, step=1)
    for kind in ("group", "moments"):
        posts = touch.get(kind) or {}
        add("Touches", f"touch_policy.{kind}.posts_per_day", f"{kind} posts a day",
            posts.get("posts_per_day", 0), "int", min=0, max=24, step=1)
        for name, content in (posts.get("content") or {}).items():
            if isinstance(content, dict):
                add("Content mix", f"touch_policy.{kind}.content.{name}.share",
                    f"{kind}: {name} share", content.get("share"), "share",
                    min=0, max=1, step=0.01)
    for name, channel in (raw.get("channels") or {}).items():
        if not isinstance(channel, dict):
            continue
        spend = channel.get("monthly_spend_cny")
        if isinstance(spend, list):
            spend = max(spend, default=0)
        if isinstance(spend, (int, float)):
            add("Channels", f"channels.{name}.monthly_spend_cny", f"{name} monthly spend",
                spend, "money", min=0, max=_slider_max(spend), step=_step(spend), switch=True)
    for i, campaign in enumerate(raw.get("campaigns") or []):
        if not isinstance(campaign, dict):
            continue
        label = str(campaign.get("name", i))
        add("Campaigns", f"campaigns.{i}.start", f"{label}: start", campaign.get("start"), "date")
        add("Campaigns", f"campaigns.{i}.days", f"{label}: days", campaign.get("days"), "int",
            min=1, max=90, step=1)
        add("Campaigns", f"campaigns.{i}.cost_cny", f"{label}: cost", campaign.get("cost_cny", 0),
            "money", min=0, max=_slider_max(campaign.get("cost_cny", 0)),
            step=_step(campaign.get("cost_cny", 0)))
    referral = raw.get("referral")
    if isinstance(referral, dict):
        gift = referral.get("gift_per_invitee_cny", 0)
        add("Referral", "referral.gift_per_invitee_cny", "gift per invitee", gift, "money",
            min=0, max=max(100, 3 * gift), step=1)
        for i, tier in enumerate(referral.get("reward_tiers") or []):
            if isinstance(tier, dict):
                add("Referral", f"referral.reward_tiers.{i}.gift_cny",
                    f"reward at {tier.get('invites')} invites", tier.get("gift_cny"), "money",
                    min=0, max=max(300, 3 * tier.get("gift_cny", 0)), step=1)
    targets = raw.get("targets") or {}
    for key, label in (("monthly_new_adds", "new adds a month"),
                       ("monthly_new_members", "new members a month")):
        value = targets.get(key)
        add("Targets", f"targets.{key}", label, value, "int", min=0,
            max=_slider_max(value or 0), step=_step(value or 0))
    add("Targets", "targets.max_monthly_deletion_rate", "most deletions a month (share)",
        targets.get("max_monthly_deletion_rate"), "share", min=0, max=0.5, step=0.005)
    return out


def _slider_max(value: float) -> float:
    top = max(3 * float(value or 0), 1000.0)
    return float(f"{top:.2g}")


def _step(value: float) -> float:
    top = _slider_max(value)
    return max(1.0, float(f"{top / 200:.1g}"))


def check(raw: dict[str, Any], source: str, overrides: list[str]) -> list[dict[str, str]]:
    """Problems of a scenario with ``overrides``, as the CLI prints them, with their
    field path (``a.b.c``) so the page can show each one beside its input."""
    try:
        validate_scenario(raw, source, overrides)
    except InputError as exc:
        return problems_json(exc)
    return []


def problems_json(exc: InputError) -> list[dict[str, str]]:
    return [{"text": str(p), "path": ".".join(str(x) for x in p.loc), "source": p.source}
            for p in exc.problems]


def clean_overrides(overrides: Any) -> list[str]:
    """Overrides from the page: a list of ``path=value`` strings of sane size."""
    if not isinstance(overrides, list) or len(overrides) > 500 or not all(
            isinstance(o, str) and 0 < len(o) <= 2000 for o in overrides):
        raise InputError([Problem("--set", (), "expected a list of path=value strings")])
    return overrides


def variant_yaml(raw: dict[str, Any], overrides: list[str]) -> tuple[str, str]:
    """The variant as YAML, and a unified diff of it against the base (both written the
    same way, so the diff shows only what the overrides change)."""
    changed, _ = apply_overrides(raw, overrides)
    before = _dump(raw)
    after = _dump(changed)
    diff = "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        fromfile="base", tofile="variant"))
    return after, diff


def _dump(raw: dict[str, Any]) -> str:
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, default_flow_style=False)


def command(kind: str, source: str, overrides: list[str], *, reps: int, seed: int, out: str,
            variants: dict[str, list[str]] | None = None, verify: int = 0) -> str:
    """The CLI command that does what the page did."""
    words = ["simdomain", kind, source]
    if kind == "compare":
        for name, sets in (variants or {}).items():
            words += ["--variant", name, *sets]
    else:
        for text in overrides:
            words += ["--set", text]
    if kind in ("run", "compare"):
        words += ["--reps", str(reps), "--seed", str(seed)]
    else:
        words += ["--verify", str(verify)] if verify else []
        words += ["--seed", str(seed)] if seed else []
    words += ["--out", out]
    return shlex.join(words)
