"""A twin's people for one replication: a parameter draw, then each person's latent state.

Replication ``rep`` uses parameter draw ``1 + order[rep // reps_per_draw]`` (an order of
the draws fixed by the root seed), or the point estimates (draw 0) when asked. Given
the draw, each customer is still active with their own posterior probability; an
active customer's order rate and dropout hazard are drawn from their gamma posteriors
(:func:`simdomain.twin.btyd.posterior_latent`), a contact's deletion frailty from its
posterior given their survival so far; people with no order draw from the population.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from simdomain.errors import InputError, Problem
from simdomain.scenario.io import validate_scenario
from simdomain.scenario.model import Scenario

Mode = Literal["posterior", "point"]
LATENT = ("pnbd", "deletion", "model")
"""Prefixes of parameter columns that are not scenario paths."""
PEOPLE_COLUMNS = ("customer_id", "stage", "segment", "source", "join_day", "orders", "gmv_cny",
                  "first_order_day", "last_order_day", "member_day", "koc_day", "x", "t_x",
                  "T", "deletion_hazard")


def _read(path: str, what: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError([Problem(path, (), f"cannot read the twin's {what}: {exc}")]) from None
    missing = [c for c in columns if c not in frame]
    if missing:
        raise InputError([Problem(path, (), f"the twin's {what} lack the columns {missing}")])
    return frame


@dataclass
class TwinPeople:
    """The people and parameter draws of a twin scenario, read once per simulation."""

    people: pd.DataFrame
    parameters: pd.DataFrame | None
    reps_per_draw: int

    @classmethod
    def of(cls, scenario: Scenario) -> TwinPeople:
        files = scenario.population
        assert files is not None
        people = _read(files.people, "people", PEOPLE_COLUMNS)
        parameters = None if files.parameters is None else _read(files.parameters,
                                                                 "parameters", ("draw",))
        return cls(people, parameters, files.reps_per_draw)

    @property
    def draws(self) -> int:
        """Parameter draws available (besides the point estimates)."""
        return 0 if self.parameters is None else int((self.parameters["draw"] > 0).sum())

    def draw_for(self, rep: int, seed: int, mode: Mode) -> int:
        """The parameter draw replication ``rep`` uses (0: the point estimates)."""
        if mode == "point" or self.draws == 0:
            return 0
        order = np.random.default_rng([seed, 0x7715]).permutation(self.draws)
        return int(order[(rep // self.reps_per_draw) % self.draws]) + 1

    def scenario_for(self, scenario: Scenario, draw: int) -> Scenario:
        """The scenario with the draw's values in place of the point estimates."""
        if draw == 0 or self.parameters is None:
            return scenario
        row = self.parameters.loc[self.parameters["draw"] == draw].iloc[0]
        raw = scenario.model_dump(mode="json", exclude_none=True)
        for column, value in row.items():
            if column == "draw" or "." not in column or column.split(".")[0] in LATENT:
                continue
            node = raw
            path = column.split(".")
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = float(value)
        if "model.order_level" in row:  # the model's own error, as a level on repeat orders
            raw["lifecycle"]["repeat_order"] = min(
                raw["lifecycle"]["repeat_order"] * float(row["model.order_level"]), 1.0)
        return validate_scenario(raw, f"{scenario.name} (parameter draw {draw})")

    def latent(self, draw: int) -> dict[str, float]:
        """The draw's Pareto/NBD parameters and deletion frailty shape."""
        table = self.parameters
        if table is None:
            raise InputError([Problem("twin", (), "no parameters file: the order process "
                                      "of the twin's people is unknown")])
        row = table.loc[table["draw"] == draw].iloc[0]
        return {k: float(row[k]) for k in ("pnbd.r", "pnbd.alpha", "pnbd.s", "pnbd.beta",
                                           "deletion.shape") if k in row}

    def initial(self, scenario: Scenario, draw: int,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Everyone known on the start date, with latent states drawn for this replication:
        the fields of the engine's ``InitialPeople``, as arrays."""
        p = self.people
        latent = self.latent(draw)
        r, alpha = latent["pnbd.r"], latent["pnbd.alpha"]
        s, beta = latent["pnbd.s"], latent["pnbd.beta"]
        n = len(p)
        buyers = (p["orders"].to_numpy() > 0) & p["x"].notna().to_numpy()
        order = rng.gamma(r, 1.0 / r, n)
        dropout = rng.gamma(s, 1.0 / s, n)
        dormant = np.zeros(n, dtype=bool)
        if buyers.any():
            from simdomain.twin import btyd  # scipy loads for twins only, not every run

            x, t_x, T = (p.loc[buyers, c].to_numpy(float) for c in ("x", "t_x", "T"))
            post = btyd.posterior_latent((r, alpha, s, beta), x, t_x, T)
            dormant[buyers] = rng.random(int(buyers.sum())) >= post["p_alive"]
            # lambda ~ Gamma(r + x, alpha + T) over the mean rate r / alpha
            order[buyers] = rng.gamma(post["lambda_shape"], 1.0 / post["lambda_rate"]) * alpha / r
            dropout[buyers] = rng.gamma(post["mu_shape"], 1.0 / post["mu_rate"]) * beta / s
        k = latent.get("deletion.shape")
        deletion = np.ones(n)
        if k:
            hazard = p["deletion_hazard"].to_numpy(float)
            known = ~np.isnan(hazard)
            deletion = rng.gamma(k, 1.0 / k, n)
            deletion[known] = rng.gamma(k, 1.0 / (k + hazard[known]))
        segments = list(scenario.segments)
        shares = np.array([seg.share for seg in scenario.segments.values()])
        segment = p["segment"].astype(str).to_numpy()
        unknown = ~np.isin(segment, segments)
        segment = np.where(unknown, "", segment).astype(object)
        segment[unknown] = np.asarray(segments, dtype=object)[
            rng.choice(len(segments), int(unknown.sum()), p=shares / shares.sum())]

        def days(column: str) -> np.ndarray:
            return p[column].to_numpy(float)

        return {
            "stage": p["stage"].to_numpy(), "segment": segment, "source": p["source"].to_numpy(),
            "join_day": days("join_day"), "orders": p["orders"].to_numpy(),
            "gmv_cny": days("gmv_cny"), "first_order_day": days("first_order_day"),
            "last_order_day": days("last_order_day"), "member_day": days("member_day"),
            "koc_day": days("koc_day"), "dormant": dormant, "order_multiplier": order,
            "dormancy_multiplier": dropout, "deletion_multiplier": deletion,
        }
