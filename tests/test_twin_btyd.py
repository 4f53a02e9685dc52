"""The Pareto/NBD, its closed forms, the order summary and the gamma-frailty survival.

Statistical checks use data from the independent generators of ``twin_support`` with
fixed seeds. Monte Carlo comparisons use z-scores of sums of independent residuals
(|z| < 4: a false alarm about once in 16,000 checks); coverage counts over seeds use the
binomial 0.1% quantile of the stated level as their floor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from frailty_oracle import FrailtyFit, fit_frailty_survival
from scipy import integrate, special, stats
from twin_support import simulate_frailty, simulate_pareto_nbd

from simdomain.errors import InputError
from simdomain.twin.btyd import (
    ParetoNBDParams,
    _log_g,
    expected_orders,
    expected_orders_new,
    fit_pareto_nbd,
    p_alive,
    pareto_nbd_loglik,
    posterior_latent,
    rfm_summary,
    sample_orders,
)

# CDNOW's Pareto/NBD estimates (Fader & Hardie), converted from weeks to days
TRUE = ParetoNBDParams(r=0.55, alpha=10.58 * 7, s=0.61, beta=11.67 * 7)
Z = 4.0


def z_score(residuals: np.ndarray, variance: np.ndarray | None = None) -> float:
    """Sum of independent mean-zero residuals over its standard error."""
    var = np.sum(residuals**2) if variance is None else np.sum(variance)
    return float(np.sum(residuals) / np.sqrt(var))


def history(seed: int, n: int, horizon: float = 0.0, params=TRUE):
    rng = np.random.default_rng(seed)
    return simulate_pareto_nbd(n, *params, rng.uniform(30, 540, n), rng, horizon)


# ---------------------------------------------------------------------------- summary
def test_rfm_summary_known_answer():
    orders = pd.DataFrame({
        "customer_id": ["b", "a", "a", "a", "a", "b", "c", "a"],
        "ordered_at": ["2024-01-05 10:00", "2024-01-01 09:00", "2024-01-01 18:00",
                       "2024-01-11 12:00", "2024-01-11 13:00", "2024-01-05 11:00",
                       "2024-02-01", "2024-03-01"],
        "amount": [5.0, 10.0, 20.0, 7.0, 3.0, 1.0, 4.0, 100.0],
    })
    out = rfm_summary(orders, "2024-01-31")
    assert list(out.index) == ["a", "b"]  # c ordered after as_of; a's last order too
    a, b = out.loc["a"], out.loc["b"]
    assert (a.x, a.t_x, a["T"], a.monetary, a.orders_total) == (1, 10, 30, 10.0, 4)
    assert (b.x, b.t_x, b["T"], b.orders_total) == (0, 0, 26, 2) and np.isnan(b.monetary)
    assert a.first_order == pd.Timestamp("2024-01-01")
    # as_of is a whole day: an order later on that day counts
    assert rfm_summary(orders, "2024-03-01").loc["a"].x == 2


def test_rfm_summary_refuses_missing_columns_and_dates():
    with pytest.raises(InputError, match="missing column 'amount'"):
        rfm_summary(pd.DataFrame({"customer_id": [1], "ordered_at": ["2024-01-01"]}), "2024-02-01")
    bad = pd.DataFrame({"customer_id": [1, 2], "ordered_at": ["2024-01-01", "not a date"],
                        "amount": [1.0, 2.0]})
    with pytest.raises(InputError, match="1 rows without a customer or a readable date"):
        rfm_summary(bad, "2024-02-01")


def test_rfm_summary_agrees_with_pandas_groupby():
    rng = np.random.default_rng(3)
    n = 5000
    orders = pd.DataFrame({"customer_id": rng.integers(0, 700, n),
                           "ordered_at": pd.Timestamp("2024-01-01")
                           + pd.to_timedelta(rng.integers(0, 400 * 24, n), unit="h"),
                           "amount": rng.gamma(2, 50, n)})
    out = rfm_summary(orders, "2024-12-31")
    kept = orders[orders.ordered_at < "2025-01-01"].assign(day=lambda d: d.ordered_at.dt.floor("D"))
    daily = kept.groupby(["customer_id", "day"]).amount.sum().reset_index()
    g = daily.groupby("customer_id")
    first = g.day.min()
    pd.testing.assert_series_equal(out.x, (g.size() - 1).astype(float), check_names=False)
    pd.testing.assert_series_equal(out.t_x, (g.day.max() - first).dt.days.astype(float),
                                   check_names=False)
    pd.testing.assert_series_equal(out["T"], (pd.Timestamp("2024-12-31") - first).dt.days
                                   .astype(float), check_names=False)
    repeat = daily[daily.day > daily.customer_id.map(first)].groupby("customer_id").amount.mean()
    pd.testing.assert_series_equal(out.monetary.dropna(), repeat, check_names=False)


# ---------------------------------------------------------------------------- likelihood
@pytest.mark.parametrize("params", [(0.55, 74.0, 0.61, 82.0), (0.55, 200.0, 0.6, 5.0),
                                    (2.0, 5.0, 3.0, 50.0), (0.3, 100.0, 0.2, 1.0)])
def test_hypergeometric_term_matches_quadrature(params):
    r, alpha, s, beta = params
    for x, lo, hi in [(0, 0, 30), (3, 10, 40), (20, 300, 365), (1, 5, 5.5)]:
        integral = s * integrate.quad(lambda u, x=x: (alpha + u) ** -(r + x) * (beta + u) ** -(s + 1),
                                      lo, hi, epsabs=0, epsrel=1e-12)[0]
        g = np.exp(_log_g(r, alpha, s, beta, np.array([x, x]), np.array([lo, hi])))
        assert s / (r + s + x) * (g[0] - g[1]) == pytest.approx(integral, rel=1e-9)


def test_loglik_matches_fader_hardie_formula():
    def raw(r, alpha, s, beta, x, t_x, T):  # equation (22) of the note, as printed
        c = r + s + x
        if alpha >= beta:
            a0 = (special.hyp2f1(c, s + 1, c + 1, (alpha - beta) / (alpha + t_x)) / (alpha + t_x) ** c
                  - special.hyp2f1(c, s + 1, c + 1, (alpha - beta) / (alpha + T)) / (alpha + T) ** c)
        else:
            a0 = (special.hyp2f1(c, r + x, c + 1, (beta - alpha) / (beta + t_x)) / (beta + t_x) ** c
                  - special.hyp2f1(c, r + x, c + 1, (beta - alpha) / (beta + T)) / (beta + T) ** c)
        return (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
                + np.log((alpha + T) ** -(r + x) * (beta + T) ** -s + s / c * a0))

    for params in [(0.55, 74.0, 0.61, 82.0), (0.55, 90.0, 0.61, 20.0)]:
        for x, t_x, T in [(0, 0, 50), (3, 10, 40), (7, 200, 300)]:
            ours = pareto_nbd_loglik(params, np.array([x]), np.array([t_x]), np.array([T]))[0]
            assert ours == pytest.approx(raw(*params, x, t_x, T), rel=1e-10)


# ---------------------------------------------------------------------------- fitting
def test_fit_recovers_parameters_single_seed():
    h = history(0, 4000)
    fit = fit_pareto_nbd(h["x"], h["t_x"], h["T"])
    ci = fit.interval(0.99)
    truth = pd.Series(TRUE._asdict())
    assert ((ci.lower <= truth) & (truth <= ci.upper)).all(), ci.assign(truth=truth)
    assert fit.n == fit.n_total == 4000 and fit.subsample is None
    assert np.all(np.linalg.eigvalsh(fit.cov) > 0)


def test_compression_and_weights_give_the_same_fit():
    h = history(1, 1500)
    x, t_x, T = h["x"], np.floor(h["t_x"]), np.floor(h["T"])
    full = fit_pareto_nbd(np.r_[x, x], np.r_[t_x, t_x], np.r_[T, T])
    weighted = fit_pareto_nbd(x, t_x, T, weights=np.full(x.size, 2.0))
    np.testing.assert_allclose(full.params, weighted.params, rtol=1e-4)
    assert full.loglik == pytest.approx(weighted.loglik, rel=1e-9)


def test_subsample_is_recorded_and_seeded():
    h = history(2, 3000)
    x, t_x, T = h["x"], np.floor(h["t_x"]), np.floor(h["T"])
    a = fit_pareto_nbd(x, t_x, T, max_customers=1000, seed=5)
    b = fit_pareto_nbd(x, t_x, T, max_customers=1000, seed=5)
    assert a.subsample == 1000 and a.n == 1000 and a.n_total == 3000
    assert a.params == b.params


def test_draws_are_seeded_and_centred():
    h = history(3, 3000)
    fit = fit_pareto_nbd(h["x"], np.floor(h["t_x"]), np.floor(h["T"]))
    d1 = fit.draws(4000, np.random.default_rng(1))
    d2 = fit.draws(4000, np.random.default_rng(1))
    pd.testing.assert_frame_equal(d1, d2)
    assert list(d1.columns) == ["r", "alpha", "s", "beta"]
    # the mean of the log-draws is the log estimate within 4 standard errors of a mean
    z = (np.log(d1).mean() - np.log(np.array(fit.params))) / (fit.se_log / np.sqrt(4000))
    assert (z.abs() < Z).all(), z


def test_bad_summaries_are_refused():
    for x, t_x, T in [([], [], []), ([0, 0], [0, 0], [30, 40]), ([0], [0], [0])]:
        with pytest.raises(InputError, match="nothing to fit"):
            fit_pareto_nbd(x, t_x, T)
    with pytest.raises(InputError, match="t_x > T"):
        fit_pareto_nbd([1, 2], [5, 50], [10, 20])
    with pytest.raises(InputError, match="missing or negative"):
        p_alive(TRUE, [1, -1], [1, 0], [2, 3])


@pytest.mark.slow
def test_interval_coverage_over_seeds():
    seeds, level = 40, 0.9
    floor = stats.binom.ppf(0.001, seeds, level)  # P(fewer covered | correct level) < 0.1%
    covered = pd.Series(0, index=list(TRUE._fields))
    truth = pd.Series(TRUE._asdict())
    for seed in range(seeds):
        h = history(100 + seed, 3000)
        ci = fit_pareto_nbd(h["x"], h["t_x"], h["T"]).interval(level)
        covered += ((ci.lower <= truth) & (truth <= ci.upper)).astype(int)
    assert (covered >= floor).all(), (covered, floor)


# ---------------------------------------------------------------------------- closed forms
def test_p_alive_and_expected_orders_match_simulation():
    h = history(4, 30000, horizon=180.0)
    pa = p_alive(TRUE, h["x"], h["t_x"], h["T"])
    eo = expected_orders(TRUE, 180.0, h["x"], h["t_x"], h["T"])
    for part in (h["x"] == 0, (h["x"] > 0) & (h["x"] < 4), h["x"] >= 4):
        assert abs(z_score(h["alive"][part] - pa[part], pa[part] * (1 - pa[part]))) < Z
        assert abs(z_score(h["future"][part] - eo[part])) < Z
    # and they discriminate: the alive are predicted alive more often
    assert pa[h["alive"]].mean() > pa[~h["alive"]].mean() + 0.2


def test_expected_orders_new_matches_simulation():
    rng = np.random.default_rng(5)
    h = simulate_pareto_nbd(40000, *TRUE, 0.0, rng, horizon=365.0)
    expected = expected_orders_new(TRUE, 365.0)
    assert abs(z_score(h["future"] - expected)) < Z
    # s = 1 is the logarithmic limit, continuous on both sides
    near = [expected_orders_new((0.5, 50.0, s, 80.0), 100.0) for s in (1 - 1e-6, 1.0, 1 + 1e-6)]
    np.testing.assert_allclose(near, near[1], rtol=1e-5)


def test_posterior_latent_matches_the_true_rates_of_the_alive():
    h = history(6, 30000)
    post = posterior_latent(TRUE, h["x"], h["t_x"], h["T"])
    alive = h["alive"]
    # E[1{alive} (lambda - (r+x)/(alpha+T)) | history] = 0, same for mu: sums of
    # independent mean-zero terms
    lam_mean = post["lambda_shape"] / post["lambda_rate"]
    mu_mean = post["mu_shape"] / post["mu_rate"]
    assert abs(z_score(alive * (h["lam"] - lam_mean))) < Z
    assert abs(z_score(alive * (h["mu"] - mu_mean))) < Z
    assert abs(z_score(alive - post["p_alive"])) < Z
    # drawing the state from the posterior reproduces the closed-form expectation
    rng = np.random.default_rng(7)
    draws = 20
    future = np.zeros(h["x"].size)
    for _ in range(draws):
        on = rng.random(post["p_alive"].size) < post["p_alive"]
        lam = rng.gamma(post["lambda_shape"], 1 / post["lambda_rate"])
        life = rng.exponential(1 / rng.gamma(post["mu_shape"], 1 / post["mu_rate"]))
        future += on * rng.poisson(lam * np.minimum(life, 90.0))
    eo = expected_orders(TRUE, 90.0, h["x"], h["t_x"], h["T"])
    assert abs(z_score(future / draws - eo)) < Z


def test_sampled_orders_match_the_closed_form_and_the_generator():
    h = history(8, 30000, horizon=120.0)
    x, t_x, T = h["x"], h["t_x"], h["T"]
    draw = sample_orders(TRUE, 120.0, x, t_x, T, np.random.default_rng(9))
    assert abs(z_score(draw - expected_orders(TRUE, 120.0, x, t_x, T))) < Z
    for stat in (lambda y: y, lambda y: (y == 0).astype(float), lambda y: (y >= 3).astype(float)):
        assert abs(z_score(stat(draw) - stat(h["future"]))) < Z


# ---------------------------------------------------------------------------- frailty
FRAILTY = (1.5, 1 / 200)


def frailty_data(seed: int, n: int):
    rng = np.random.default_rng(seed)
    return simulate_frailty(n, *FRAILTY, rng.uniform(30, 720, n), rng)


def test_frailty_recovers_parameters_single_seed():
    d, e, _ = frailty_data(0, 5000)
    fit = fit_frailty_survival(d, e)
    assert isinstance(fit, FrailtyFit)
    ci = fit.interval(0.99)
    truth = pd.Series(dict(zip(("k", "mean_rate"), FRAILTY)))
    assert ((ci.lower <= truth) & (truth <= ci.upper)).all(), ci.assign(truth=truth)
    # the Lomax survival: (1 + m t / k)^-k
    k, m = fit.params
    assert fit.survival(100.0) == pytest.approx((1 + m * 100 / k) ** -k)


def test_frailty_posterior_matches_the_true_hazards():
    d, e, theta = frailty_data(1, 30000)
    post = fit_frailty_survival(d[:5000], e[:5000]).posterior(d, e)
    truth_post = {"shape": FRAILTY[0] + e, "rate": FRAILTY[0] / FRAILTY[1] + d}
    assert abs(z_score(theta - truth_post["shape"] / truth_post["rate"])) < Z
    np.testing.assert_allclose(post["shape"] / post["rate"],
                               truth_post["shape"] / truth_post["rate"], rtol=0.15)


def test_frailty_refuses_data_without_events():
    with pytest.raises(InputError, match="no events"):
        fit_frailty_survival([10.0, 20.0], [0, 0])


@pytest.mark.slow
def test_frailty_interval_coverage_over_seeds():
    seeds, level = 40, 0.9
    floor = stats.binom.ppf(0.001, seeds, level)
    truth = pd.Series(dict(zip(("k", "mean_rate"), FRAILTY)))
    covered = pd.Series(0, index=truth.index)
    for seed in range(seeds):
        d, e, _ = frailty_data(200 + seed, 2000)
        ci = fit_frailty_survival(d, e).interval(level)
        covered += ((ci.lower <= truth) & (truth <= ci.upper)).astype(int)
    assert (covered >= floor).all(), (covered, floor)
