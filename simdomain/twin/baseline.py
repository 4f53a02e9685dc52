"""The BG/NBD baseline a twin's forecast is compared with, in days.

The BG/NBD (Fader, Hardie & Lee 2005) is fitted on the same summary as the twin
(:func:`simdomain.twin.btyd.rfm_summary`) and forecasts each customer's repeat orders in
``(T, T + t]`` and their probability of being active. Where PyMC-Marketing is installed
(``pip install "simdomain[btyd]"``) the baseline is its ``BetaGeoModel`` fitted by MAP
with flat priors on ``r, alpha, a, b`` (so MAP is the maximum likelihood); otherwise it is
simdomain's own maximum likelihood fit of the same closed-form likelihood. The result's
``method`` says which.

PyMC-Marketing is an optional extra because it is heavy and adds nothing the closed
forms do not give at MAP. Measured on this shared 2-core machine (load about 10), with
pymc-marketing 0.19.2 (the newest the package index here offers), pymc 5.28, pytensor 2.38:

* install: a fresh venv ``pip install pymc-marketing`` took 2 min 7 s wall with a warm
  pip cache and weighs 790 MB (an empty venv 26 MB); into simdomain's own environment it
  adds 280 MB (pymc, pytensor, arviz, numba, xarray) in 18 s;
* fit (``benchmarks/btyd.py``, synthetic whole-day histories): ``BetaGeoModel`` MAP
  took 27.7 s at 100k customers (peak +274 MB) and 66 s at 2M (+651 MB; 80 s with the
  predictions), against 5.4 s (+10 MB) and 14 s (+128 MB) for simdomain's own BG/NBD
  fit, with the same estimates to four digits. Its posterior (MCMC) predictions would
  hold chains x draws x customers: 4 x 1000 x 2M float64 is 64 GB, so not run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from simdomain.errors import InputError, Problem
from simdomain.twin.btyd import _check_rfm, _Pairs, _pairs_of, _require_repeats
from simdomain.twin.mle import LogNormalFit, as_arrays, compress, mle

PYMC_METHOD = "pymc-marketing BetaGeoModel MAP"
OWN_METHOD = "simdomain BG/NBD MLE"


class BGNBDParams(NamedTuple):
    """BG/NBD parameters: ``lambda ~ Gamma(r, alpha)`` per day, dropout ``p ~ Beta(a, b)``."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class BGNBDFit(LogNormalFit):
    """A BG/NBD fitted by maximum likelihood; ``cov`` is that of the log-parameters."""


def _bg_params(params) -> BGNBDParams:
    if isinstance(params, dict):
        return BGNBDParams(*(float(params[k]) for k in BGNBDParams._fields))
    return BGNBDParams(*(float(v) for v in params))


def bgnbd_loglik(params, x, t_x, T, *, _pairs: _Pairs | None = None) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T) under the BG/NBD (days).

    Terms that depend on (x, tau) only are evaluated once per distinct pair.
    """
    r, alpha, a, b = _bg_params(params)
    pairs = _pairs_of(x, t_x, T) if _pairs is None else _pairs
    px, ptau = pairs.x, pairs.tau
    power = -(r + px) * np.log(alpha + ptau)
    base = special.betaln(a, b)
    common = special.gammaln(r + px) - special.gammaln(r) + r * np.log(alpha)
    stay = special.betaln(a, b + px) - base + power
    left = special.betaln(a + 1, b + np.maximum(px, 1) - 1) - base
    at_T, at_t_x = pairs.at_T, pairs.at_t_x
    return common[at_T] + np.logaddexp(stay[at_T], np.where(
        px[at_T] > 0, left[at_T] + power[at_t_x], -np.inf))


def fit_bgnbd(x, t_x, T, *, weights=None) -> BGNBDFit:
    """Fit the BG/NBD by maximum likelihood (simdomain's own solver), in days."""
    x, t_x, T = _check_rfm(x, t_x, T, "fit_bgnbd")
    _require_repeats(x, T, "fit_bgnbd")
    w = None if weights is None else as_arrays("fit_bgnbd", weights=weights)[0]
    rows, counts = compress([x, t_x, T], w)
    cx, ctx, cT = rows.T
    pairs = _pairs_of(cx, ctx, cT)

    def loglik(theta: np.ndarray) -> float:
        return float(counts @ bgnbd_loglik(np.exp(theta), cx, ctx, cT, _pairs=pairs))

    rate = max((counts @ cx) / max(counts @ cT, 1.0), 1e-4)
    starts = [np.log([1.0, 1.0 / rate, 1.0, 3.0]), np.log([0.5, 0.5 / rate, 0.5, 10.0])]
    theta, cov, ll = mle(loglik, starts, counts.sum(), "fit_bgnbd")
    return BGNBDFit(params=BGNBDParams(*np.exp(theta)), cov=cov, loglik=ll, n=int(x.size))


def bgnbd_p_alive(params, x, t_x, T) -> np.ndarray:
    """P(active at T | x, t_x, T) under the BG/NBD (1 for customers without repeats)."""
    r, alpha, a, b = _bg_params(params)
    x, t_x, T = _check_rfm(x, t_x, T, "bgnbd_p_alive")
    log_odds = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))
    return np.where(x > 0, special.expit(-log_odds), 1.0)


def bgnbd_expected_orders(params, t, x, t_x, T) -> np.ndarray:
    """Expected repeat orders in (T, T + t] given the history, under the BG/NBD (days).

    Equation (10) of Fader, Hardie & Lee (2005).
    """
    r, alpha, a, b = _bg_params(params)
    x, t_x, T = _check_rfm(x, t_x, T, "bgnbd_expected_orders")
    t = np.asarray(t, dtype=np.float64)
    z = t / (alpha + T + t)
    h = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    num = (a + b + x - 1) / (a - 1) * (1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * h)
    den = 1 + (x > 0) * a / (b + np.maximum(x, 1) - 1) * np.exp((r + x) * np.log((alpha + T) / (alpha + t_x)))
    return num / den


def bgnbd_posterior_latent(params, x, t_x, T) -> dict[str, np.ndarray]:
    """Each customer's BG/NBD state at T given their history.

    Given active at T, the history's likelihood is ``lambda^x e^(-lambda T) (1-p)^x``, so
    ``lambda ~ Gamma(r+x, alpha+T)`` (per day) and ``p ~ Beta(a, b+x)``, independent.

    Returns
    -------
    dict
        ``p_alive``, ``lambda_shape``, ``lambda_rate``, ``p_a``, ``p_b``.
    """
    r, alpha, a, b = _bg_params(params)
    x, t_x, T = _check_rfm(x, t_x, T, "bgnbd_posterior_latent")
    return {"p_alive": bgnbd_p_alive((r, alpha, a, b), x, t_x, T), "lambda_shape": r + x,
            "lambda_rate": alpha + T, "p_a": np.full_like(x, a), "p_b": b + x}


def bgnbd_sample_orders(params, t, x, t_x, T, rng: np.random.Generator) -> np.ndarray:
    """One draw per customer of their repeat orders in (T, T + t] under the BG/NBD.

    An active customer orders as a Poisson process and leaves after each order with
    probability p, so the count is ``min(Poisson(lambda t), Geometric(p))``.
    """
    post = bgnbd_posterior_latent(params, x, t_x, T)
    n = post["p_alive"].size
    active = rng.random(n) < post["p_alive"]
    lam = rng.gamma(post["lambda_shape"], 1.0 / post["lambda_rate"])
    last = rng.geometric(rng.beta(post["p_a"], post["p_b"]))
    return np.where(active, np.minimum(rng.poisson(lam * np.asarray(t, dtype=float)), last), 0)


@dataclass(frozen=True)
class BaselineForecast:
    """The BG/NBD baseline's forecast.

    Attributes
    ----------
    method
        ``"pymc-marketing BetaGeoModel MAP"`` or ``"simdomain BG/NBD MLE"``.
    params
        :class:`BGNBDParams` (r, alpha per day, a, b).
    customers
        Indexed like the summary, columns ``expected_orders`` (repeat orders in
        ``(T, T + horizon_days]``) and ``p_alive``.
    horizon_days
        The forecast horizon ``t`` in days.
    fit_seconds
        Wall time of the fit (predictions excluded).
    """

    method: str
    params: BGNBDParams
    customers: pd.DataFrame
    horizon_days: float
    fit_seconds: float


def pymc_marketing_available() -> bool:
    """Whether PyMC-Marketing's CLV module can be imported."""
    try:
        import pymc_marketing.clv  # noqa: F401
    except ImportError:
        return False
    return True


def _fit_pymc(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BGNBDParams:
    """BG/NBD parameters from ``pymc_marketing.clv.BetaGeoModel``, MAP with flat priors."""
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel

    data = pd.DataFrame({"customer_id": np.arange(x.size), "frequency": x, "recency": t_x,
                         "T": T})
    flat = {name: Prior("HalfFlat") for name in BGNBDParams._fields}
    model = BetaGeoModel(model_config=flat)
    model.fit(data=data, method="map", progressbar=False)
    post = model.idata.posterior
    return BGNBDParams(*(float(post[name].values.ravel()[0]) for name in BGNBDParams._fields))


def bgnbd_baseline(rfm: pd.DataFrame, horizon_days: float, *, method: str = "auto",
                   max_customers: int | None = None, seed: int = 0) -> BaselineForecast:
    """Fit the BG/NBD on a summary and forecast each customer's orders.

    Parameters
    ----------
    rfm
        The output of :func:`simdomain.twin.btyd.rfm_summary` (columns ``x``, ``t_x``,
        ``T`` in days), one row per customer.
    horizon_days
        Forecast horizon ``t``: orders are forecast in ``(T, T + t]`` for every customer.
    method
        ``"auto"`` (PyMC-Marketing when installed, else simdomain's own fit),
        ``"pymc"`` (PyMC-Marketing, an error when missing) or ``"simdomain"``.
    max_customers
        Fit on a seeded uniform subsample of this many customers (predictions are for
        all); ``None`` fits on all.
    seed
        Seed of the subsample.

    Returns
    -------
    BaselineForecast
        Predictions from the fitted parameters with simdomain's closed forms (the
        same expressions as PyMC-Marketing's ``expected_purchases`` and
        ``expected_probability_alive``, checked against them in the tests).
    """
    if method not in ("auto", "pymc", "simdomain"):
        raise ValueError(f"The 'method' parameter of bgnbd_baseline must be 'auto', 'pymc' or "
                         f"'simdomain'. Got {method!r} instead.")
    missing = [c for c in ("x", "t_x", "T") if c not in rfm.columns]
    if missing:
        raise InputError([Problem("rfm", (c,), "missing column") for c in missing])
    use_pymc = method == "pymc" or (method == "auto" and pymc_marketing_available())
    if method == "pymc" and not pymc_marketing_available():
        raise InputError([Problem("bgnbd_baseline", ("method",), "PyMC-Marketing is not "
                                  "installed: pip install \"simdomain[btyd]\"")])
    x, t_x, T = _check_rfm(rfm["x"], rfm["t_x"], rfm["T"], "rfm")
    fx, ftx, fT = x, t_x, T
    if max_customers is not None and x.size > max_customers:
        pick = np.sort(np.random.default_rng(seed).choice(x.size, max_customers, replace=False))
        fx, ftx, fT = x[pick], t_x[pick], T[pick]
    start = time.perf_counter()
    params = _fit_pymc(fx, ftx, fT) if use_pymc else fit_bgnbd(fx, ftx, fT).params
    seconds = time.perf_counter() - start
    customers = pd.DataFrame({"expected_orders": bgnbd_expected_orders(params, horizon_days,
                                                                       x, t_x, T),
                              "p_alive": bgnbd_p_alive(params, x, t_x, T)}, index=rfm.index)
    return BaselineForecast(method=PYMC_METHOD if use_pymc else OWN_METHOD, params=params,
                            customers=customers, horizon_days=float(horizon_days),
                            fit_seconds=seconds)
