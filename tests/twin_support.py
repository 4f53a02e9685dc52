"""Independent generators of customer-base data for the twin's tests (continuous time, days).

Written from the models' stories, not from simdomain's formulas: a Pareto/NBD customer
orders as a Poisson process with rate lambda until an exponential lifetime with rate mu
ends; a BG/NBD customer may leave after each repeat order with probability p.
"""

from __future__ import annotations

import numpy as np


def simulate_pareto_nbd(n: int, r: float, alpha: float, s: float, beta: float, T,
                        rng: np.random.Generator, horizon: float = 0.0) -> dict[str, np.ndarray]:
    """Histories to ``T`` and orders in ``(T, T + horizon]`` of ``n`` Pareto/NBD customers."""
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    life = rng.exponential(1 / mu)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    seen = np.minimum(life, T)
    x = rng.poisson(lam * seen)
    # the last of x uniform order times on (0, seen)
    t_x = np.where(x > 0, seen * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    future = rng.poisson(lam * np.clip(np.minimum(life, T + horizon) - T, 0, None))
    return {"x": x.astype(float), "t_x": t_x, "T": T, "alive": life > T, "future": future,
            "lam": lam, "mu": mu}


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, T,
                   rng: np.random.Generator, horizon: float = 0.0) -> dict[str, np.ndarray]:
    """Histories to ``T`` and orders in ``(T, T + horizon]`` of ``n`` BG/NBD customers."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    end = T + horizon
    now, x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    alive_at_T = np.ones(n, bool)
    active = np.ones(n, bool)
    while active.any():  # one pass per order number, vectorised over customers
        i = np.flatnonzero(active)
        now[i] += rng.exponential(1 / lam[i])
        over = now[i] > end[i]
        active[i[over]] = False
        i = i[~over]
        before = now[i] <= T[i]
        x[i[before]] += 1
        t_x[i[before]] = now[i[before]]
        future[i[~before]] += 1
        leave = rng.random(i.size) < p[i]
        active[i[leave]] = False
        alive_at_T[i[leave & before]] = False
    return {"x": x, "t_x": t_x, "T": T, "alive": alive_at_T, "future": future}


def simulate_frailty(n: int, k: float, mean_rate: float, censor, rng: np.random.Generator):
    """Exponential event times with gamma frailty, right-censored at ``censor`` days."""
    theta = rng.gamma(k, mean_rate / k, n)
    time = rng.exponential(1 / theta)
    censor = np.broadcast_to(np.asarray(censor, dtype=float), (n,))
    return np.minimum(time, censor), (time <= censor).astype(float), theta
