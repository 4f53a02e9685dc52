"""Lifecycle rates estimated from an order log: the engine's customer model, in reverse.

After their first order a customer is, each day, **active**, **dormant** or **gone**
(deleted the brand; never orders again), hidden from the log. As in the engine
(:func:`simdomain.sim.steps.lifecycle`), on each day they order with probability
``repeat_order`` if active, times ``dormant_multiplier`` if dormant, times
``member_order_multiplier`` once a member; then they are gone with probability
``deletion``; otherwise an active one falls dormant with probability ``dormancy`` and a
dormant one wakes with probability ``wake``. A customer who is not yet a member joins
the membership with probability ``join`` if active (times ``dormant_multiplier`` if
dormant) -- seen in the log through ``member_join_date``. Whether they are dormant just
after the first order is a parameter too.

:func:`fit_rates` estimates these rates by maximum likelihood with the EM algorithm
for this hidden Markov model. The forward-backward pass moves from one "special" day
(an order, joining, the first day as a member) to the next: a run of ``k`` quiet days is
one matrix power, and its expected transitions come from precomputed sums, so the cost
grows with the number of orders rather than of days. Order values give the mean and
coefficient of variation of the (lognormal) order value.

A log cannot separate "deleted the brand" from "stopped buying for good but stayed a
friend": the estimated ``deletion`` is the latter's rate, an upper bound on deletions.
Fans never appear in a log of orders: ``first_order`` and fan deletion are not estimated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import yaml
from scipy import optimize

from simdomain import __version__
from simdomain.models.transactions import Transactions

ACTIVE, DORMANT, GONE = range(3)


@dataclass
class LifecycleRates:
    """Estimated daily rates (see the module docstring); ``None`` if not estimable."""

    repeat_order: float
    dormancy: float
    wake: float
    dormant_multiplier: float
    deletion_customer: float
    first_dormant: float
    order_value_cny: float
    order_value_cv: float
    member_order_multiplier: float | None
    deletion_member: float | None
    join: float | None
    customers: int
    orders: int
    customer_days: int
    log_likelihood: float
    iterations: int
    converged: bool

    def table(self) -> pd.DataFrame:
        """``parameter, value, description`` rows."""
        described = {
            "repeat_order": "daily order probability of an active customer (not a member)",
            "member_order_multiplier": "on repeat_order once a member",
            "join": "daily probability that a customer joins the membership",
            "dormancy": "daily probability that an active customer falls dormant",
            "wake": "daily probability that a dormant customer wakes",
            "dormant_multiplier": "on orders while dormant",
            "deletion_customer": "daily probability that a customer stops for good",
            "deletion_member": "the same for a member",
            "first_dormant": "share dormant just after the first order",
            "order_value_cny": "mean order value (yuan)",
            "order_value_cv": "coefficient of variation of the order value",
            "customers": "customers in the log", "orders": "orders in the log",
            "customer_days": "days observed after first orders",
            "log_likelihood": "of the order days under the fitted model",
            "iterations": "EM iterations", "converged": "EM met its tolerance",
        }
        values = asdict(self)
        return pd.DataFrame([(k, values[k], d) for k, d in described.items()],
                            columns=["parameter", "value", "description"])


@dataclass
class _Sequences:
    """Each customer's days after the first order, cut at the days that matter.

    Day 1 (the day after the first order) opens the sequence; then come "special" days
    (days with an order, the day of joining, the first day as a member), each after a run of
    ``k`` days without orders and with one member flag; a final run reaches the end of
    the log. Arrays of special days are (customers, slots), padded (``valid`` False).
    """

    first_order: np.ndarray
    first_flag: np.ndarray
    first_joined: np.ndarray
    run: np.ndarray
    run_flag: np.ndarray
    step_flag: np.ndarray
    ordered: np.ndarray
    joined_step: np.ndarray
    valid: np.ndarray
    end_run: np.ndarray
    end_flag: np.ndarray
    joined: np.ndarray
    """Customers who joined the membership on an observed day."""
    length: np.ndarray
    slots: np.ndarray
    """Special days per customer."""


def _sequences(tx: Transactions) -> _Sequences:
    customers = tx.customers
    first = customers["first_day"].to_numpy(np.int64)
    length = tx.end_day - first
    member_day = customers["member_day"].to_numpy(np.int64)
    never = np.iinfo(np.int64).max // 2
    member = np.where(member_day >= 0, member_day - first, never)  # flag on days > member
    keep = np.flatnonzero(length > 0)
    remap = np.full(len(first), -1)
    remap[keep] = np.arange(len(keep))
    first, length, member = first[keep], length[keep], member[keep]
    n = len(keep)
    orders = tx.orders
    who = remap[orders["customer"].to_numpy()]
    day = orders["day"].to_numpy(np.int64) - np.where(who >= 0, first[np.maximum(who, 0)], 0)
    inside = (who >= 0) & (day >= 1)
    who, day = who[inside], day[inside]
    first_order = np.zeros(n, dtype=bool)
    first_order[who[day == 1]] = True
    switch = member + 1
    switching = np.flatnonzero((switch >= 2) & (switch <= length))
    joining = np.flatnonzero((member >= 2) & (member <= length))
    late = day >= 2
    special = pd.DataFrame({
        "who": np.concatenate([who[late], switching, joining]),
        "day": np.concatenate([day[late], switch[switching], member[joining]]),
        "ordered": np.concatenate([np.ones(int(late.sum()), bool),
                                   np.zeros(len(switching) + len(joining), bool)]),
        "joined": np.concatenate([np.zeros(int(late.sum()) + len(switching), bool),
                                  np.ones(len(joining), bool)]),
    }).groupby(["who", "day"], sort=True)[["ordered", "joined"]].max().reset_index()
    s_who = special["who"].to_numpy()
    s_day = special["day"].to_numpy(np.int64)
    slot = special.groupby("who").cumcount().to_numpy()
    slots = np.bincount(s_who, minlength=n)
    width = int(slots.max()) if n and len(slots) else 0
    previous = np.where(slot > 0, np.roll(s_day, 1), 1)
    grid = np.zeros((n, width), dtype=np.int64)
    run, run_flag, step_flag = grid.copy(), grid.copy(), grid.copy()
    ordered = np.zeros((n, width), dtype=bool)
    valid, joined_step = ordered.copy(), ordered.copy()
    run[s_who, slot] = s_day - previous - 1
    run_flag[s_who, slot] = s_day - 1 > member[s_who]
    step_flag[s_who, slot] = s_day > member[s_who]
    ordered[s_who, slot] = special["ordered"].to_numpy()
    joined_step[s_who, slot] = special["joined"].to_numpy()
    valid[s_who, slot] = True
    last = np.ones(n, dtype=np.int64)
    np.maximum.at(last, s_who, s_day)
    return _Sequences(first_order=first_order, first_flag=(1 > member).astype(np.int64),
                      first_joined=member == 1, run=run, run_flag=run_flag,
                      step_flag=step_flag, ordered=ordered, joined_step=joined_step,
                      valid=valid, end_run=length - last,
                      end_flag=(length > member).astype(np.int64),
                      joined=(member >= 1) & (member <= length), length=length, slots=slots)


def fit_rates(tx: Transactions, *, max_iter: int = 200, tol: float = 1e-8,
              chunk: int = 4096) -> LifecycleRates:
    """Maximum-likelihood lifecycle rates of an order log (see the module docstring).

    EM is slow along the ridge where dormancy, waking and the dormant order rate trade
    off, so its steps are accelerated with SQUAREM (Varadhan and Roland, 2008): each
    iteration is two EM steps, an extrapolation along them and a stabilizing EM step,
    kept only if it does not lower the likelihood. ``tol`` is on the relative change of
    the log-likelihood between iterations.
    """
    seq = _sequences(tx)
    members = bool(tx.has_members and (seq.end_flag.any() or seq.first_flag.any()))
    n_flags = 2 if members else 1
    observed = (seq.ordered.sum() + seq.first_order.sum()) / max(seq.length.sum(), 1)
    base = max(observed * 1.5, 1e-4)
    non_member_days = max(float(seq.length.sum()), 1.0)
    params = {"r_active": np.full(n_flags, base), "multiplier": 0.1,
              "dormancy": 0.01, "wake": 0.01, "deletion": np.full(n_flags, 0.001),
              "first_dormant": 0.1,
              "join": max(seq.joined.sum() / non_member_days * 1.5, 1e-6) if members else 1e-12}
    order = np.argsort(seq.slots, kind="stable")

    def em(theta: np.ndarray) -> tuple[np.ndarray, float]:
        """One EM update in logit space, and the log-likelihood of ``theta``."""
        current = _unpack(theta, n_flags)
        stats, loglik = _e_step(seq, order, current, members, chunk)
        return _pack(_m_step(stats, current)), loglik

    theta, previous, converged, it = _pack(params), -np.inf, False, 0
    for it in range(1, max_iter + 1):
        theta, loglik = _squarem_step(em, theta)
        if np.isfinite(previous) and abs(loglik - previous) <= tol * abs(previous):
            converged = True
            break
        previous = loglik
    params = _unpack(theta, n_flags)
    _, loglik = _e_step(seq, order, params, members, chunk)
    r_a, multiplier = params["r_active"], float(params["multiplier"])
    amounts = tx.orders["amount"].to_numpy()
    mean = float(amounts.mean())
    return LifecycleRates(
        repeat_order=float(r_a[0]), dormancy=float(params["dormancy"]), wake=float(params["wake"]),
        dormant_multiplier=multiplier, deletion_customer=float(params["deletion"][0]),
        first_dormant=float(params["first_dormant"]), order_value_cny=mean,
        order_value_cv=float(amounts.std(ddof=1) / mean) if len(amounts) > 1 and mean > 0 else 0.0,
        member_order_multiplier=float(r_a[1] / r_a[0]) if members else None,
        deletion_member=float(params["deletion"][1]) if members else None,
        join=float(params["join"]) if members else None, customers=len(seq.length), orders=len(amounts),
        customer_days=int(seq.length.sum()), log_likelihood=float(loglik), iterations=it,
        converged=converged)


def _transitions(params: dict) -> np.ndarray:
    """The 3x3 daily transition matrix of each member flag, shape (flags, 3, 3)."""
    matrices = []
    for d in params["deletion"]:
        a, w = params["dormancy"], params["wake"]
        matrices.append([[(1 - d) * (1 - a), (1 - d) * a, d],
                         [(1 - d) * w, (1 - d) * (1 - w), d],
                         [0.0, 0.0, 1.0]])
    return np.array(matrices)


def _emissions(params: dict) -> np.ndarray:
    """P(the day's observations | state), shape (flags, ordered, joined, 3): whether the
    customer ordered, and (not yet a member) whether they joined the membership."""
    r_a = params["r_active"]
    m, j = params["multiplier"], params["join"]
    flags = len(r_a)
    order = np.empty((flags, 2, 3))
    order[:, 0] = np.stack([1 - r_a, 1 - m * r_a, np.ones(flags)], axis=1)
    order[:, 1] = np.stack([r_a, m * r_a, np.zeros(flags)], axis=1)
    join = np.ones((flags, 2, 3))
    join[0, 0] = [1 - j, 1 - m * j, 1.0]  # flag 0: not yet a member
    join[0, 1] = [j, m * j, 0.0]
    if flags > 1:
        join[1, 1] = 0.0  # a member cannot join again
    return order[:, :, None, :] * join[:, None, :, :]


def _powers(params: dict, longest: int) -> tuple[np.ndarray, np.ndarray]:
    """For each member flag and run length k: ``P[k] = M^k`` and the 4-index sums
    ``W[k][x, a, b, y] = sum_{i=1..k} (M^(i-1))[x, a] (M^(k-i))[b, y]``, where ``M`` is
    one day without an order (transition, then the no-order emission). A run's expected
    transitions are then ``alpha W beta`` times ``M``, whatever its length."""
    trans, emission = _transitions(params), _emissions(params)
    flags = len(trans)
    power = np.empty((flags, longest + 1, 3, 3))
    sums = np.zeros((flags, longest + 1, 3, 3, 3, 3))
    eye = np.eye(3)
    for f in range(flags):
        step = trans[f] * emission[f, 0, 0][None, :]
        power[f, 0] = eye
        for k in range(1, longest + 1):
            power[f, k] = power[f, k - 1] @ step
            sums[f, k] = sums[f, k - 1] @ step + np.einsum("xa,by->xaby", power[f, k - 1], eye)
    return power, sums


def _e_step(seq: _Sequences, order: np.ndarray, params: dict, members: bool,
            chunk: int) -> tuple[dict, float]:
    n_flags = len(params["r_active"])
    stats = {"orders": np.zeros((2, n_flags)), "days": np.zeros((2, n_flags)),
             "joins": np.zeros(2), "moves": np.zeros((n_flags, 3, 3)), "first_dormant": 0.0,
             "customers": 0}
    longest = int(max(seq.run.max(initial=0), seq.end_run.max(initial=0)))
    power, sums = _powers(params, longest)
    loglik = 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, len(order), chunk):
            loglik += _chunk(seq, order[lo: lo + chunk], params, power, sums, stats)
    if not np.isfinite(loglik) or not all(np.all(np.isfinite(v)) for v in stats.values()):
        return stats, -np.inf  # an impossible history under these rates: reject them
    stats["gone"] = stats["moves"][:, :2, GONE].sum(axis=1)
    stats["alive"] = stats["moves"][:, :2, :].sum(axis=(1, 2))
    moves = stats["moves"].sum(axis=0)
    stats["fall"], stats["stay"] = moves[ACTIVE, DORMANT], moves[ACTIVE, ACTIVE]
    stats["wake"], stats["sleep"] = moves[DORMANT, ACTIVE], moves[DORMANT, DORMANT]
    return stats, loglik


def _normalized(v: np.ndarray, live: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to sum to 1, and their sums (1 where not ``live``; 0 = impossible)."""
    c = v.sum(axis=1)
    if live is not None:
        c = np.where(live, c, 1.0)
    return v / c[:, None], c


def _chunk(seq: _Sequences, rows: np.ndarray, params: dict, power: np.ndarray,
           sums: np.ndarray, stats: dict) -> float:
    """Scaled forward-backward over the blocks (runs and special days) of a chunk of
    customers; adds the expected counts to ``stats``, returns the log-likelihood."""
    trans, emission = _transitions(params), _emissions(params)
    n, width = len(rows), int(seq.slots[rows].max(initial=0))
    run, run_flag = seq.run[rows, :width], seq.run_flag[rows, :width]
    step_flag, ordered = seq.step_flag[rows, :width], seq.ordered[rows, :width].astype(np.int64)
    joined = seq.joined_step[rows, :width].astype(np.int64)
    valid = seq.valid[rows, :width]
    end_run, end_flag = seq.end_run[rows], seq.end_flag[rows]
    first_flag, first_order = seq.first_flag[rows], seq.first_order[rows].astype(np.int64)
    first_joined = seq.first_joined[rows].astype(np.int64)
    start = np.array([1 - params["first_dormant"], params["first_dormant"], 0.0])
    first_emission = emission[first_flag, first_order, first_joined]
    alpha, loglik = _normalized(start[None, :] * first_emission)
    loglik = np.log(loglik).sum()
    before_run = np.empty((width, n, 3))
    before_step = np.empty((width, n, 3))
    scale_run = np.ones((width, n))
    scale_step = np.ones((width, n))
    for j in range(width):
        before_run[j] = alpha
        alpha, scale_run[j] = _normalized(
            np.einsum("nx,nxy->ny", alpha, power[run_flag[:, j], run[:, j]]), valid[:, j])
        before_step[j] = alpha
        moved = np.einsum("nx,nxy->ny", alpha, trans[run_flag[:, j]])
        stepped, scale_step[j] = _normalized(
            moved * emission[step_flag[:, j], ordered[:, j], joined[:, j]], valid[:, j])
        alpha = np.where(valid[:, j, None], stepped, alpha)
    before_end = alpha
    alpha, scale_end = _normalized(np.einsum("nx,nxy->ny", alpha, power[end_flag, end_run]))
    loglik += np.log(scale_run).sum() + np.log(scale_step).sum() + np.log(scale_end).sum()

    beta = np.ones((n, 3))
    _add_run(stats, before_end, beta, end_flag, end_run, scale_end, power, sums, trans, emission)
    beta = np.einsum("nxy,ny->nx", power[end_flag, end_run], beta) / scale_end[:, None]
    for j in range(width - 1, -1, -1):
        ok = valid[:, j]
        t = trans[run_flag[:, j]]
        e = emission[step_flag[:, j], ordered[:, j], joined[:, j]]
        weight = e * beta / scale_step[j][:, None]
        xi = before_step[j][:, :, None] * t * weight[:, None, :]
        xi[~ok] = 0.0
        for f in range(len(trans)):
            stats["moves"][f] += xi[run_flag[:, j] == f].sum(axis=0)
        gamma = xi.sum(axis=1)
        for f in range(len(trans)):
            here = ok & (step_flag[:, j] == f)
            stats["days"][:, f] += gamma[here][:, :2].sum(axis=0)
            stats["orders"][:, f] += (gamma[here][:, :2] * ordered[here, j, None]).sum(axis=0)
        stats["joins"] += (gamma[ok & (joined[:, j] == 1)][:, :2]).sum(axis=0)
        beta = np.where(ok[:, None], np.einsum("nxy,ny->nx", t, weight), beta)
        _add_run(stats, before_run[j], beta, run_flag[:, j], np.where(ok, run[:, j], 0),
                 scale_run[j], power, sums, trans, emission)
        beta = np.einsum("nxy,ny->nx", power[run_flag[:, j], np.where(ok, run[:, j], 0)],
                         beta) / scale_run[j][:, None]
    gamma, _ = _normalized(start[None, :] * first_emission * beta)
    for f in range(len(trans)):
        here = first_flag == f
        stats["days"][:, f] += gamma[here][:, :2].sum(axis=0)
        stats["orders"][:, f] += (gamma[here][:, :2] * first_order[here, None]).sum(axis=0)
    stats["joins"] += gamma[first_joined == 1][:, :2].sum(axis=0)
    stats["first_dormant"] += float(gamma[:, DORMANT].sum())
    stats["customers"] += n
    return float(loglik)


def _add_run(stats: dict, alpha: np.ndarray, beta: np.ndarray, flag: np.ndarray, k: np.ndarray,
             scale: np.ndarray, power: np.ndarray, sums: np.ndarray, trans: np.ndarray,
             emission: np.ndarray) -> None:
    """Expected transitions and days of runs without orders (``k`` days each)."""
    some = k > 0
    if not some.any():
        return
    flag, k, alpha, beta, scale = flag[some], k[some], alpha[some], beta[some], scale[some]
    inner = np.einsum("nx,nxaby,ny->nab", alpha, sums[flag, k], beta) / scale[:, None, None]
    for f in range(len(trans)):
        mine = flag == f
        if not mine.any():
            continue
        xi = inner[mine].sum(axis=0) * trans[f] * emission[f, 0, 0][None, :]
        stats["moves"][f] += xi
        stats["days"][:, f] += xi.sum(axis=0)[:2]


_SCALARS = ("multiplier", "dormancy", "wake", "first_dormant", "join")
_VECTORS = ("r_active", "deletion")


def _pack(params: dict, vectors: tuple[str, ...] = _VECTORS,
          scalars: tuple[str, ...] = _SCALARS) -> np.ndarray:
    """Parameters (probabilities) as one vector of logits."""
    values = np.concatenate([np.atleast_1d(params[k]) for k in (*vectors, *scalars)]).astype(float)
    values = np.clip(values, 1e-12, 1 - 1e-12)
    return np.log(values) - np.log1p(-values)


def _unpack(theta: np.ndarray, n_flags: int) -> dict:
    values = 1.0 / (1.0 + np.exp(-theta))
    params, at = {}, 0
    for key in _VECTORS:
        params[key] = values[at: at + n_flags]
        at += n_flags
    for key in _SCALARS:
        params[key] = float(values[at])
        at += 1
    return params


def _bounds(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logit bounds of an extrapolated point: daily rates at most 0.5, the dormant
    multiplier at most 0.9 (a jump must not swap the meaning of the states)."""
    flags = (len(theta) - len(_SCALARS)) // len(_VECTORS)
    upper = np.concatenate([np.zeros(flags * len(_VECTORS)), [2.2, 0.0, 0.0, 25.0, 0.0]])
    return np.full(len(theta), -25.0), upper


def _squarem_step(em, theta: np.ndarray) -> tuple[np.ndarray, float]:
    """One SQUAREM iteration (scheme SqS3); returns the new point and the
    log-likelihood at ``theta``."""
    first, loglik = em(theta)
    second, loglik_first = em(first)
    r = first - theta
    v = second - first - r
    norm_v = np.linalg.norm(v)
    if norm_v == 0 or not np.isfinite(norm_v):
        return second, loglik
    step = min(-np.linalg.norm(r) / norm_v, -1.0)
    jumped = np.clip(theta - 2 * step * r + step * step * v, *_bounds(theta))
    stabilized, loglik_jumped = em(jumped)
    if not np.isfinite(loglik_jumped) or loglik_jumped < loglik_first:
        return second, loglik
    return stabilized, loglik


def _m_step(stats: dict, params: dict) -> dict:
    def ratio(a: np.ndarray | float, b: np.ndarray | float, fallback: np.ndarray | float):
        a, b = np.asarray(a, float), np.asarray(b, float)
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), fallback)

    eps = 1e-9
    out = dict(params)
    out["r_active"], out["multiplier"], out["join"] = _rates(stats, params)
    out["deletion"] = np.clip(ratio(stats["gone"], stats["alive"], params["deletion"]), eps, 1 - eps)
    out["dormancy"] = float(np.clip(ratio(stats["fall"], stats["fall"] + stats["stay"],
                                          params["dormancy"]), eps, 1 - eps))
    out["wake"] = float(np.clip(ratio(stats["wake"], stats["wake"] + stats["sleep"],
                                      params["wake"]), eps, 1 - eps))
    out["first_dormant"] = float(np.clip(ratio(stats["first_dormant"], stats["customers"],
                                               params["first_dormant"]), eps, 1 - eps))
    return out


def _rates(stats: dict, params: dict) -> tuple[np.ndarray, float, float]:
    """Maximize the expected log-likelihood of the orders and joins over the active
    order rates (per member flag), the dormant multiplier they share with joining (as
    in the engine) and the join rate."""
    o_a, n_a = stats["orders"][ACTIVE], stats["days"][ACTIVE]
    o_d, n_d = stats["orders"][DORMANT], stats["days"][DORMANT]
    j_a, j_d = stats["joins"]
    free_a, free_d = n_a[0] - j_a, n_d[0] - j_d  # non-member days without joining
    flags = len(o_a)

    def loss(z: np.ndarray) -> tuple[float, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(-z))
        r, m, j = p[:flags], p[flags], p[flags + 1]
        q, mj = m * r, m * j
        value = (o_a * np.log(r) + (n_a - o_a) * np.log1p(-r)
                 + o_d * np.log(q) + (n_d - o_d) * np.log1p(-q)).sum()
        value += j_a * np.log(j) + free_a * np.log1p(-j) + j_d * np.log(mj) + free_d * np.log1p(-mj)
        d_r = o_a / r - (n_a - o_a) / (1 - r) + o_d / r - (n_d - o_d) * m / (1 - q)
        d_m = (o_d / m - (n_d - o_d) * r / (1 - q)).sum() + j_d / m - free_d * j / (1 - mj)
        d_j = j_a / j - free_a / (1 - j) + j_d / j - free_d * m / (1 - mj)
        grad = np.concatenate([d_r, [d_m, d_j]]) * p * (1 - p)
        return -float(value), -grad

    start = _pack({"r_active": params["r_active"], "multiplier": params["multiplier"],
                   "join": params["join"]}, ("r_active",), ("multiplier", "join"))
    bounds = [(-25, 0)] * flags + [(-25, 2.2), (-25, 0)]
    if j_a + j_d <= 0:
        bounds[-1] = (-27.6, -27.6)  # no joins seen: join stays at ~1e-12
        start[-1] = -27.6
    best = optimize.minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    p = 1.0 / (1.0 + np.exp(-best.x))
    return p[:flags], float(p[flags]), float(p[flags + 1])


def rates_fragment(rates: LifecycleRates, tx: Transactions) -> str:
    """A scenario fragment (YAML with comments) to merge by hand into a scenario."""
    life: dict = {"repeat_order": rates.repeat_order}
    if rates.member_order_multiplier is not None:
        life["member_order_multiplier"] = rates.member_order_multiplier
    if rates.join is not None:
        life["join"] = rates.join
    life.update(dormancy=rates.dormancy, wake=rates.wake,
                dormant_multiplier=rates.dormant_multiplier)
    deletion = {"customer": rates.deletion_customer}
    if rates.deletion_member is not None:
        deletion["member"] = rates.deletion_member
    life["deletion"] = deletion
    fragment = {
        "lifecycle": _rounded(life),
        "segments": {"customers": _rounded({"order_value_cny": rates.order_value_cny,
                                            "order_value_cv": rates.order_value_cv})},
    }
    header = (
        f"# Fitted by `simdomain fit --transactions {tx.source}` (simdomain {__version__}) from\n"
        f"# {rates.customers:,} customers and {rates.orders:,} orders, {tx.start} .. {tx.end}.\n"
        "# A fragment to merge by hand into a scenario: rates are per person per day.\n"
        "# deletion.customer/member: the rate of stopping for good (a log of orders cannot\n"
        "# tell deleting the brand from staying a silent friend). first_order, fan deletion\n"
        "# and KOC rates are not in a log of orders. segments.customers: one segment over\n"
        "# all customers; copy its order value to your own segments.\n"
    )
    return header + yaml.safe_dump(fragment, sort_keys=False)


def _rounded(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        out[key] = _rounded(value) if isinstance(value, dict) else float(f"{value:.4g}")
    return out
