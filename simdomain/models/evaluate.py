"""Held-out evaluation: discrimination, calibration and the lift of the top decile.

Splits are by person (``rep`` and ``agent``), never by row: a person's snapshots on
several days are all in the training set or all in the test set, so the test measures
how the models do on people they have not seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from simdomain.models.estimators import LifecycleModels

METRIC_COLUMNS = ["target", "estimator", "metric", "value"]
CALIBRATION_COLUMNS = ["target", "estimator", "bin", "n", "mean_predicted", "observed_rate"]
GROUP_COLUMNS = ["target", "estimator", "group", "value", "n", "predicted", "realized"]


def split_people(keys: pd.DataFrame, *, test_share: float = 0.25, seed: int = 0,
                 by: Sequence[str] = ("rep", "agent")) -> np.ndarray:
    """A boolean mask of test rows: ``test_share`` of the people, drawn with ``seed``."""
    if not 0 < test_share < 1:
        raise ValueError(f"The 'test_share' parameter must be in (0, 1). Got {test_share!r} instead.")
    people = keys[list(by)].drop_duplicates()
    rng = np.random.default_rng(seed)
    chosen = people[rng.random(len(people)) < test_share]
    index = pd.MultiIndex.from_frame(keys[list(by)])
    return index.isin(pd.MultiIndex.from_frame(chosen))


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Event rate among the 10% highest scores over the overall event rate."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    base = y.mean()
    if len(y) == 0 or base == 0:
        return float("nan")
    top = np.argsort(-p, kind="stable")[: max(1, int(np.ceil(0.1 * len(y))))]
    return float(y[top].mean() / base)


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles (by default) of the predicted probability: people, mean prediction and
    observed event rate in each. Ties may merge bins."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    frame = pd.DataFrame({"bin": which, "p": p, "y": y})
    table = frame.groupby("bin").agg(n=("y", "size"), mean_predicted=("p", "mean"),
                                     observed_rate=("y", "mean")).reset_index()
    table["bin"] = np.arange(1, len(table) + 1)
    return table


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier score, top-decile lift and base rate."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p, labels=[0, 1])),
        "top_decile_lift": top_decile_lift(y, p),
        "base_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
        "n": float(len(y)),
    }


@dataclass
class Evaluation:
    """Held-out results of one or more fitted :class:`LifecycleModels`.

    Attributes
    ----------
    metrics
        Tidy ``target, estimator, metric, value`` (see :func:`scores`).
    calibration
        ``target, estimator, bin, n, mean_predicted, observed_rate``.
    groups
        Predicted vs realized events per value of a grouping column (e.g. the source
        channel): ``target, estimator, group, value, n, predicted, realized`` with
        ``predicted`` the sum of probabilities and ``realized`` the count of events.
    """

    metrics: pd.DataFrame
    calibration: pd.DataFrame
    groups: pd.DataFrame

    def metric(self, target: str, estimator: str, name: str) -> float:
        m = self.metrics
        return float(m.loc[(m["target"] == target) & (m["estimator"] == estimator)
                           & (m["metric"] == name), "value"].iloc[0])

    def wide(self) -> pd.DataFrame:
        """One row per target and estimator, one column per metric."""
        return self.metrics.pivot_table(index=["target", "estimator"], columns="metric",
                                        values="value", sort=False).reset_index()


def evaluate(models: dict[str, LifecycleModels], X: pd.DataFrame, y: pd.DataFrame, *,
             group_by: Sequence[str] = ("source",), bins: int = 10) -> Evaluation:
    """Score each fitted model set on held-out rows ``X`` with labels ``y``."""
    metrics, calibration, groups = [], [], []
    for name, model in models.items():
        probabilities = model.predict_proba(X)
        for target in model.targets_:
            known = y[target].notna().to_numpy()
            truth = y[target].to_numpy()[known].astype(int)
            p = probabilities[target].to_numpy()[known]
            for metric, value in scores(truth, p).items():
                metrics.append((target, name, metric, value))
            table = calibration_table(truth, p, bins)
            calibration.append(table.assign(target=target, estimator=name))
            for column in group_by:
                frame = pd.DataFrame({"value": X[column].to_numpy()[known], "p": p, "y": truth})
                agg = frame.groupby("value", observed=True).agg(
                    n=("y", "size"), predicted=("p", "sum"), realized=("y", "sum")).reset_index()
                groups.append(agg.assign(target=target, estimator=name, group=column))
    return Evaluation(
        metrics=pd.DataFrame(metrics, columns=METRIC_COLUMNS),
        calibration=pd.concat(calibration, ignore_index=True)[CALIBRATION_COLUMNS],
        groups=(pd.concat(groups, ignore_index=True)[GROUP_COLUMNS] if groups
                else pd.DataFrame(columns=GROUP_COLUMNS)),
    )
