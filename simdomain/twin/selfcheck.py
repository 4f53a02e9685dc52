"""How wrong the twin's order model was on the brand's own recent past: its model error.

Parameter draws carry what the data cannot pin down within the model; they do not
carry the model being wrong (rates that drift, processes it does not have). So the
twin holds out the last ``holdout_days`` of its own data, fits the Pareto/NBD on what
came before, and compares the customers' expected repeat orders in each 30-day block
of the holdout (censored at the deletions that did happen, times the fitted month
index) with what they did. The spread of the log errors beyond Poisson noise is the
model error; each parameter draw then carries a level error on repeat orders of that
size, so intervals widen by what the model got wrong before, and the output says how
much of a spread it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simdomain.twin import btyd
from simdomain.twin.history import History
from simdomain.twin.season import Season

BLOCK_DAYS = 30
MIN_TRAIN_DAYS = 180


@dataclass(frozen=True)
class ModelError:
    """The holdout's blocks and the model error they imply.

    Attributes
    ----------
    blocks
        Per block: ``start`` and ``stop`` (days from the as-of date), ``expected`` and
        ``actual`` repeat orders of the customers known at the holdout's start.
    sigma
        Standard deviation of the log level error, beyond Poisson noise (0 if none).
    """

    blocks: pd.DataFrame
    sigma: float

    def level_draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Multipliers on repeat orders with mean 1: ``exp(sigma z - sigma^2 / 2)``."""
        return np.exp(self.sigma * rng.standard_normal(n) - self.sigma**2 / 2)


def order_model_error(history: History, season: Season | None,
                      holdout_days: int = 90) -> ModelError | None:
    """Fit on all but the last ``holdout_days`` and score the rest; ``None`` when the
    data are too short (under :data:`MIN_TRAIN_DAYS` before the holdout)."""
    people = history.people
    cut = -float(holdout_days)
    first_all = people["first_order_day"].to_numpy(float)
    is_known = first_all < cut  # NaN (never ordered) is not
    known = people[is_known]
    if len(known) < 50 or -known["first_order_day"].min() - holdout_days < MIN_TRAIN_DAYS:
        return None
    person, whole = history.days["person"].to_numpy(), history.days["day"].to_numpy()
    days = pd.DataFrame({"person": person, "whole": whole})[is_known[person]]
    before = days[days["whole"] < cut]
    count = np.bincount(before["person"], minlength=len(people))[is_known]
    last = before.groupby("person")["whole"].max().reindex(range(len(people))).to_numpy()
    first = known["first_order_day"].to_numpy(float)
    x = (count - 1).astype(float)
    t_x = last[is_known] - first
    T = cut - first
    try:
        params = btyd.fit_pareto_nbd(x, t_x, T).params
    except Exception:  # noqa: BLE001 - a holdout too thin to fit says nothing
        return None
    ended = (known["deletion_day"] + 1).fillna(0.0).clip(upper=0.0).to_numpy(float)
    after = days[days["whole"] >= cut]
    rows = []
    for start in np.arange(cut, 0.0, BLOCK_DAYS):
        stop = min(start + BLOCK_DAYS, 0.0)
        if stop - start < BLOCK_DAYS / 2:
            break
        # expected in [start, stop), each customer only while still a contact
        upto = np.clip(np.minimum(stop, ended) - cut, 0.0, None)
        since = np.clip(np.minimum(start, ended) - cut, 0.0, None)
        expected = (btyd.expected_orders(params, upto, x, t_x, T)
                    - btyd.expected_orders(params, since, x, t_x, T)).sum()
        if season is not None:
            month = (pd.Timestamp(history.as_of) + pd.Timedelta(days=1)
                     + pd.Timedelta(days=float(start + stop) / 2)).month
            expected *= season.month_index.get(month, 1.0)
        actual = int(((after["whole"] >= start) & (after["whole"] < stop)).sum())
        rows.append({"start": start, "stop": stop, "expected": float(expected),
                     "actual": actual})
    blocks = pd.DataFrame(rows)
    blocks = blocks[(blocks["expected"] > 0) & (blocks["actual"] > 0)]
    if blocks.empty:
        return None
    log_error = np.log(blocks["actual"] / blocks["expected"])
    noise = (1.0 / blocks["actual"]).mean()
    sigma = float(np.sqrt(max(float((log_error**2).mean()) - noise, 0.0)))
    return ModelError(blocks=blocks.reset_index(drop=True), sigma=sigma)
