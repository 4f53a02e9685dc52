"""Buy-till-you-die models of a brand's customers, fitted on one row per customer.

Everything is in **days**: ``t_x``, ``T`` and horizons ``t`` are days, so the rates
``alpha`` and ``beta`` are rates of days (an order rate ``lambda ~ Gamma(r, alpha)`` is
orders per day while active, a dropout hazard ``mu ~ Gamma(s, beta)`` is per day).

* :func:`rfm_summary` turns an order log into the sufficient statistics
  (``x``, ``t_x``, ``T``, ``monetary``) in the BTYD convention.
* :func:`fit_pareto_nbd` fits the Pareto/NBD (Schmittlein, Morrison & Colombo 1987) by
  maximum likelihood, following Fader & Hardie, "A Note on Deriving the Pareto/NBD Model
  and Related Expressions" (2005), with asymptotic normal intervals on the log scale.
* :func:`p_alive`, :func:`expected_orders`, :func:`expected_orders_new` and
  :func:`posterior_latent` are its closed forms, vectorised over customers;
  :func:`sample_orders` draws each customer's future orders from them.

The likelihood is evaluated on the distinct ``(x, t_x, T)`` rows, weighted by their
counts, and its hypergeometric terms on the distinct ``(x, t_x)`` and ``(x, T)`` pairs,
so a base of millions of customers observed in whole days costs a few thousand
evaluations of ``scipy.special.hyp2f1`` per likelihood call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from simdomain.errors import InputError, Problem
from simdomain.twin.mle import LogNormalFit, as_arrays, compress, mle, unique_rows


class ParetoNBDParams(NamedTuple):
    """Pareto/NBD parameters: ``lambda ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)``, per day."""

    r: float
    alpha: float
    s: float
    beta: float


# ---------------------------------------------------------------------------- summary
def rfm_summary(orders: pd.DataFrame, as_of, *, customer_col: str = "customer_id",
                time_col: str = "ordered_at", amount_col: str | None = "amount",
                source: str = "orders") -> pd.DataFrame:
    """One row per customer with the BTYD sufficient statistics, in days.

    Orders are bucketed to calendar days (the time of day is dropped; a timezone-aware
    column is read in its own timezone). Only orders on days up to and including the
    day of ``as_of`` count. The models are continuous in time while these counts are of
    days with an order: the gap is of the order of (orders per day)^2, negligible for
    customers ordering a few times a year, visible for near-daily buyers.

    Parameters
    ----------
    orders
        One row per order (or per order line).
    as_of
        The observation end: anything ``pd.Timestamp`` reads; only its day is used.
    customer_col, time_col, amount_col
        Column names; ``amount_col=None`` skips ``monetary``.
    source
        Name of the input, for error messages.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (the values of ``customer_col``), sorted, with

        ``x``
            repeat orders: the number of distinct days with an order after the first
            such day (the BTYD convention: several orders on one day count once);
        ``t_x``
            days from the first to the last order day;
        ``T``
            days from the first order day to the ``as_of`` day;
        ``monetary``
            mean amount per repeat order day (amounts summed within a day, the first day
            excluded), NaN when ``x == 0``;
        ``first_order``
            the first order day (``datetime64[ns]`` at midnight);
        ``orders_total``
            rows of ``orders`` up to ``as_of`` (every order, first day included).

    Raises
    ------
    InputError
        A missing column, or times that cannot be read as dates.
    """
    wanted = [customer_col, time_col] + ([amount_col] if amount_col else [])
    missing = [c for c in wanted if c not in orders.columns]
    if missing:
        raise InputError([Problem(source, (c,), f"missing column {c!r}; the columns are "
                                  f"{list(orders.columns)}") for c in missing])
    try:
        cut = pd.Timestamp(as_of)
    except (TypeError, ValueError) as err:
        raise InputError([Problem(source, ("as_of",), f"cannot read {as_of!r} as a date")]) \
            from err
    times = orders[time_col]
    if not pd.api.types.is_datetime64_any_dtype(times):
        raw = times
        times = pd.to_datetime(raw, errors="coerce", format="ISO8601")
        odd = times.isna() & raw.notna()
        if odd.any():  # other layouts, parsed one by one
            times = times.where(~odd, pd.to_datetime(raw[odd], errors="coerce", format="mixed"))
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_localize(None)
    days = times.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    bad = np.flatnonzero(pd.isna(times).to_numpy() | pd.isna(orders[customer_col]).to_numpy())
    if bad.size:
        col = time_col if pd.isna(times.iloc[bad[0]]) else customer_col
        raise InputError([Problem(source, (f"row {int(bad[0])}", col), f"{bad.size} rows "
                                  "without a customer or a readable date (rows counted from 0)")])
    cut_day = np.datetime64(cut.tz_localize(None) if cut.tzinfo else cut, "D").astype(np.int64)
    keep = days <= cut_day
    codes, ids = pd.factorize(orders[customer_col].to_numpy()[keep], sort=True)
    days = days[keep]
    amount = (orders[amount_col].to_numpy(dtype=np.float64)[keep] if amount_col
              else np.zeros(days.size))
    n = ids.size
    empty = pd.DataFrame({"x": np.zeros(0), "t_x": np.zeros(0), "T": np.zeros(0),
                          "monetary": np.zeros(0), "first_order": pd.to_datetime([]),
                          "orders_total": np.zeros(0, np.int64)})
    if n == 0:
        return empty.rename_axis("customer_id")
    day0 = days.min()
    span = np.int64(cut_day - day0 + 1)
    # distinct (customer, day) pairs from the sorted keys; amounts need no sorting: a
    # customer's repeat amount is their total less what they spent on their first day
    key = np.sort(codes.astype(np.int64) * span + (days - day0))
    key = key[np.r_[True, key[1:] != key[:-1]]]
    pair_code = key // span
    n_days = np.bincount(pair_code, minlength=n)
    first_idx = np.r_[0, np.cumsum(n_days)[:-1]]
    first_day = key[first_idx] % span + day0
    last_day = key[first_idx + n_days - 1] % span + day0
    x = n_days - 1
    on_first = days == first_day[codes]
    repeat_amount = (np.bincount(codes, weights=amount, minlength=n)
                     - np.bincount(codes[on_first], weights=amount[on_first], minlength=n))
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(x > 0, repeat_amount / np.maximum(x, 1), np.nan)
    out = pd.DataFrame({
        "x": x.astype(np.float64),
        "t_x": (last_day - first_day).astype(np.float64),
        "T": (cut_day - first_day).astype(np.float64),
        "monetary": monetary if amount_col else np.nan,
        "first_order": first_day.astype("datetime64[D]").astype("datetime64[ns]"),
        "orders_total": np.bincount(codes, minlength=n).astype(np.int64),
    }, index=pd.Index(ids, name="customer_id"))
    return out


# ---------------------------------------------------------------------------- checks
def _check_rfm(x, t_x, T, source: str = "rfm") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = as_arrays(source, x=x, t_x=t_x, T=T)
    bad = np.flatnonzero((t_x > T + 1e-9) | ((x == 0) & (t_x > 0)))
    if bad.size:
        raise InputError([Problem(source, ("t_x", int(bad[0])), f"{bad.size} rows with "
                                  "t_x > T or orders without repeats but t_x > 0")])
    return x, t_x, T


def _require_repeats(x: np.ndarray, T: np.ndarray, what: str) -> None:
    """Refuse summaries a purchase model cannot be fitted on."""
    if not np.any(x > 0) or not np.any(T > 0):
        raise InputError([Problem(what, ("x",), f"{x.size} customers, none with a repeat order "
                                  "observed over a positive time: nothing to fit")])


def _params(params) -> ParetoNBDParams:
    if isinstance(params, Mapping):
        return ParetoNBDParams(*(float(params[k]) for k in ParetoNBDParams._fields))
    return ParetoNBDParams(*(float(v) for v in params))


# ---------------------------------------------------------------------------- likelihood
def _log_g(r: float, alpha: float, s: float, beta: float, x: np.ndarray,
           tau: np.ndarray) -> np.ndarray:
    """log G(tau), where s * int_a^b (alpha+u)^-(r+x) (beta+u)^-(s+1) du = s/(r+s+x) (G(a)-G(b)).

    Fader & Hardie's A0 term, after Euler's transformation of the hypergeometric
    function, so that the remaining 2F1 stays bounded: for alpha >= beta,
    ``G = (alpha+tau)^-(r+x) (beta+tau)^-s 2F1(1, r+x; r+s+x+1; (alpha-beta)/(alpha+tau))``
    and the mirror image with (alpha, r+x) and (beta, s+1) exchanged otherwise.
    """
    c = r + s + x + 1.0
    if alpha >= beta:
        z = (alpha - beta) / (alpha + tau)
        f = special.hyp2f1(1.0, r + x, c, z)
        return -(r + x) * np.log(alpha + tau) - s * np.log(beta + tau) + np.log(f)
    z = (beta - alpha) / (beta + tau)
    f = special.hyp2f1(1.0, s + 1.0, c, z)
    return -(s + 1.0) * np.log(beta + tau) + (1.0 - r - x) * np.log(alpha + tau) + np.log(f)


class _Pairs(NamedTuple):
    """The distinct (x, tau) pairs among (x, t_x) and (x, T), and where each row's are."""

    x: np.ndarray
    tau: np.ndarray
    at_t_x: np.ndarray
    at_T: np.ndarray


def _pairs_of(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> _Pairs:
    (px, ptau), inverse = unique_rows([np.r_[x, x], np.r_[t_x, T]])
    return _Pairs(px, ptau, inverse[:x.size], inverse[x.size:])


def _loglik_parts(p: ParetoNBDParams, x, t_x, T,
                  pairs: _Pairs | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: log of the 'alive at T' term and of the 'died in (t_x, T]' term.

    Both exclude the common factor Gamma(r+x) alpha^r beta^s / Gamma(r). Everything
    that depends on (x, tau) only is evaluated once per distinct pair and gathered.
    """
    r, alpha, s, beta = p
    pairs = _pairs_of(x, t_x, T) if pairs is None else pairs
    px, ptau = pairs.x, pairs.tau
    g = _log_g(r, alpha, s, beta, px, ptau)
    alive = (-(r + px) * np.log(alpha + ptau) - s * np.log(beta + ptau))[pairs.at_T]
    gx, gT = g[pairs.at_t_x], g[pairs.at_T]
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = gx + np.log1p(-np.exp(np.minimum(gT - gx, 0.0)))  # log(G(t_x) - G(T))
    dead = np.log(s / (r + s + px))[pairs.at_T] + np.where(T > t_x, diff, -np.inf)
    return alive, dead


def pareto_nbd_loglik(params, x, t_x, T, *, _pairs: _Pairs | None = None) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T) under the Pareto/NBD, in days."""
    p = _params(params)
    r, alpha, s, beta = p
    pairs = _pairs_of(x, t_x, T) if _pairs is None else _pairs
    alive, dead = _loglik_parts(p, x, t_x, T, pairs)
    const = special.gammaln(r + pairs.x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    with np.errstate(invalid="ignore"):  # both terms -inf far out: not finite, and refused
        return const[pairs.at_T] + np.logaddexp(alive, dead)


# ---------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class ParetoNBDFit(LogNormalFit):
    """A Pareto/NBD fitted by maximum likelihood, in days.

    Attributes
    ----------
    params
        :class:`ParetoNBDParams` (r, alpha, s, beta): ``lambda ~ Gamma(r, alpha)`` orders
        per day while active, ``mu ~ Gamma(s, beta)`` dropout hazard per day.
    cov
        Covariance of (log r, log alpha, log s, log beta), the inverse observed information.
    loglik
        Maximised log-likelihood (of the subsample, if any; weighted).
    n
        Customers the fit used (the subsample size when subsampled).
    n_total
        Customers given.
    subsample
        ``None`` when every customer was used, otherwise the subsample size (a seeded
        uniform sample without replacement; the intervals are those of the subsample,
        so they are wider than a full fit's, never narrower).
    """

    n_total: int = 0
    subsample: int | None = None


def fit_pareto_nbd(x, t_x, T, *, weights=None, max_customers: int | None = None,
                   seed: int = 0) -> ParetoNBDFit:
    """Fit the Pareto/NBD by maximum likelihood on the summaries of :func:`rfm_summary`.

    Parameters
    ----------
    x, t_x, T
        Repeat orders, days from first to last order, days from first order to the end
        of observation; one entry per customer.
    weights
        Optional non-negative frequency weights per customer.
    max_customers
        Fit on a seeded uniform subsample of this many customers when there are more
        (``None``: all). The distinct-row compression makes the full fit fast for data
        in whole days, so this is rarely needed.
    seed
        Seed of the subsample.

    Returns
    -------
    ParetoNBDFit
    """
    x, t_x, T = _check_rfm(x, t_x, T, "fit_pareto_nbd")
    _require_repeats(x, T, "fit_pareto_nbd")
    w = None if weights is None else as_arrays("fit_pareto_nbd", weights=weights)[0]
    n_total = x.size
    subsample = None
    if max_customers is not None and n_total > max_customers:
        pick = np.sort(np.random.default_rng(seed).choice(n_total, max_customers, replace=False))
        x, t_x, T = x[pick], t_x[pick], T[pick]
        w = None if w is None else w[pick]
        subsample = int(max_customers)
    rows, counts = compress([x, t_x, T], w)
    cx, ctx, cT = rows.T
    total = counts.sum()
    pairs = _pairs_of(cx, ctx, cT)

    def loglik(theta: np.ndarray) -> float:
        return float(counts @ pareto_nbd_loglik(np.exp(theta), cx, ctx, cT, _pairs=pairs))

    # starts: an order rate from the repeat orders per day observed, two dropout scales
    rate = max((counts @ cx) / max(counts @ cT, 1.0), 1e-4)
    starts = [np.log([1.0, 1.0 / rate, 1.0, b]) for b in (np.median(cT) + 1, 10 * (cT.max() + 1))]
    theta, cov, ll = mle(loglik, starts, total, "fit_pareto_nbd")
    return ParetoNBDFit(params=ParetoNBDParams(*np.exp(theta)), cov=cov, loglik=ll,
                        n=int(x.size), n_total=int(n_total), subsample=subsample)


# ---------------------------------------------------------------------------- closed forms
def p_alive(params, x, t_x, T) -> np.ndarray:
    """P(still active at T | x, t_x, T) under the Pareto/NBD, per customer."""
    p = _params(params)
    x, t_x, T = _check_rfm(x, t_x, T, "p_alive")
    alive, dead = _loglik_parts(p, x, t_x, T)
    return np.exp(alive - np.logaddexp(alive, dead))


def _one_minus_ratio_power(q: np.ndarray, s: float) -> np.ndarray:
    """(1 - q^(s-1)) / (s-1), and its limit -log q at s = 1."""
    logq = np.log(q)
    if abs(s - 1.0) < 1e-8:
        return -logq
    return -np.expm1((s - 1.0) * logq) / (s - 1.0)


def expected_orders(params, t, x, t_x, T) -> np.ndarray:
    """Expected repeat orders in (T, T + t] given the history, per customer (days).

    ``E[Y(t) | x, t_x, T] = P(alive) (r+x)(beta+T)/(alpha+T) (1 - ((beta+T)/(beta+T+t))^(s-1))/(s-1)``.
    ``t`` is a scalar or one horizon per customer.
    """
    r, alpha, s, beta = _params(params)
    x, t_x, T = _check_rfm(x, t_x, T, "expected_orders")
    t = np.asarray(t, dtype=np.float64)
    q = (beta + T) / (beta + T + t)
    return (p_alive((r, alpha, s, beta), x, t_x, T) * (r + x) * (beta + T) / (alpha + T)
            * _one_minus_ratio_power(q, s))


def expected_orders_new(params, t) -> np.ndarray:
    """Expected orders in (0, t] of a customer who has just arrived (unconditional, days)."""
    r, alpha, s, beta = _params(params)
    t = np.asarray(t, dtype=np.float64)
    return r * beta / alpha * _one_minus_ratio_power(beta / (beta + t), s)


def posterior_latent(params, x, t_x, T) -> dict[str, np.ndarray]:
    """Each customer's latent state at T given their history.

    Given alive at T, the likelihood of the history is ``lambda^x e^(-lambda T) e^(-mu T)``,
    which factorises, so the posterior is ``lambda ~ Gamma(r+x, alpha+T)`` and
    ``mu ~ Gamma(s, beta+T)``, independent (Fader & Hardie 2005; the memoryless dropout
    makes the remaining lifetime Exp(mu) from T). A customer who has left never orders
    again, so their rates do not matter for the future.

    Returns
    -------
    dict
        ``p_alive``; ``lambda_shape``, ``lambda_rate`` (per day); ``mu_shape``,
        ``mu_rate`` (per day), all arrays over customers.
    """
    r, alpha, s, beta = _params(params)
    x, t_x, T = _check_rfm(x, t_x, T, "posterior_latent")
    return {"p_alive": p_alive((r, alpha, s, beta), x, t_x, T),
            "lambda_shape": r + x, "lambda_rate": alpha + T,
            "mu_shape": np.full_like(T, s), "mu_rate": beta + T}


def sample_orders(params, t, x, t_x, T, rng: np.random.Generator) -> np.ndarray:
    """One draw per customer of their repeat orders in (T, T + t], given one parameter set.

    The state is drawn from :func:`posterior_latent` (active or not, then lambda and mu),
    the remaining lifetime is Exp(mu), the orders Poisson. Repeat the call, with the
    parameter set drawn from the fit, for predictive intervals with parameter
    uncertainty; only one draw per customer is held at a time.
    """
    post = posterior_latent(params, x, t_x, T)
    n = post["p_alive"].size
    active = rng.random(n) < post["p_alive"]
    lam = rng.gamma(post["lambda_shape"], 1.0 / post["lambda_rate"])
    life = rng.exponential(1.0 / rng.gamma(post["mu_shape"], 1.0 / post["mu_rate"]))
    return np.where(active, rng.poisson(lam * np.minimum(life, t)), 0)

