"""Estimators follow scikit-learn's conventions; the evaluation measures what it says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from models_support import busy
from sklearn.base import clone
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from simdomain.models.estimators import BoostedTrees, LifecycleModels
from simdomain.models.evaluate import (
    calibration_table,
    evaluate,
    scores,
    split_people,
    top_decile_lift,
)
from simdomain.models.panel import FEATURES, LABELS, simulate_panel


@pytest.fixture(scope="module")
def panel():
    _, panel = simulate_panel(busy(), seed=5, reps=2, days=[40, 60, 80])
    return panel


@pytest.fixture(scope="module")
def split(panel):
    test = split_people(panel, seed=5)
    X, y = panel[list(FEATURES)], panel[list(LABELS)]
    return X[~test], y[~test], X[test], y[test]


def test_fit_returns_self_with_trailing_underscore_state(split):
    X, y, _, _ = split
    model = LifecycleModels("logistic", random_state=1)
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    assert model.fit(X, y) is model
    assert model.targets_ == list(LABELS)
    assert list(model.feature_names_in_) == list(FEATURES) and model.n_features_in_ == len(FEATURES)
    assert set(model.estimators_) == set(LABELS)
    assert all(0 < rate < 1 for rate in model.positive_rate_.values())
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(clone(model), "estimators_")


def test_same_seed_same_model_and_probabilities_in_range(split):
    X, y, X_test, _ = split
    first = LifecycleModels("gbm", random_state=7).fit(X, y).predict_proba(X_test)
    again = LifecycleModels("gbm", random_state=7).fit(X, y).predict_proba(X_test)
    pd.testing.assert_frame_equal(first, again)
    assert ((first >= 0) & (first <= 1)).all().all()
    assert list(first.columns) == list(LABELS) and first.index.equals(X_test.index)


def test_any_classifier_can_be_swapped_in(split):
    X, y, X_test, _ = split
    plain = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_include="category")),
            (make_pipeline(SimpleImputer(strategy="constant", fill_value=-1.0), StandardScaler()),
             make_column_selector(dtype_exclude="category"))),
        LogisticRegression(max_iter=500))
    model = LifecycleModels(plain, targets=["churn_30d", "join_30d"]).fit(X, y)
    assert model.targets_ == ["churn_30d", "join_30d"]
    assert model.predict_proba(X_test).shape == (len(X_test), 2)
    assert model.estimators_["churn_30d"] is not plain


def test_parameters_are_checked_in_fit_with_one_message_template(split):
    X, y, _, _ = split
    with pytest.raises(ValueError, match=r"The 'estimator' parameter of LifecycleModels must be "
                                         r"one of \['gbm', 'logistic'\].*Got 'forest' instead"):
        LifecycleModels("forest").fit(X, y)
    with pytest.raises(ValueError, match="The 'max_rows' parameter"):
        LifecycleModels(max_rows=3).fit(X, y)
    with pytest.raises(ValueError, match="targets"):
        LifecycleModels(targets=["nope"]).fit(X, y)


def test_unseen_categories_and_all_missing_columns_are_scored(split):
    X, y, X_test, _ = split
    X = X.assign(days_since_campaign=np.float32(np.nan))  # all missing in fit
    model = LifecycleModels("gbm", targets=["churn_30d"]).fit(X, y)
    odd = X_test.head(5).copy()
    odd["source"] = pd.Categorical(["a channel never seen"] * 5)
    p = model.predict_proba(odd)
    assert p.notna().all().all()
    booster = model.estimators_["churn_30d"].calibrated_classifiers_[0].estimator
    assert isinstance(booster, BoostedTrees) and booster.empty_.any()


def test_held_out_models_beat_chance_and_are_calibrated(split):
    X, y, X_test, y_test = split
    models = {name: LifecycleModels(name, random_state=2).fit(X, y) for name in ("gbm", "logistic")}
    result = evaluate(models, X_test, y_test)
    for estimator in models:
        assert result.metric("join_30d", estimator, "roc_auc") > 0.65
        assert result.metric("order_30d", estimator, "roc_auc") > 0.55
        for target in ("churn_30d", "join_30d", "order_30d"):
            base = result.metric(target, estimator, "base_rate")
            mean = result.metric(target, estimator, "mean_predicted")
            assert abs(mean - base) < 0.25 * base + 0.01
            assert result.metric(target, estimator, "brier") < base * (1 - base) + 1e-3
    table = result.calibration
    assert set(table.columns) == {"target", "estimator", "bin", "n", "mean_predicted",
                                  "observed_rate"}
    groups = result.groups[(result.groups["target"] == "join_30d")]
    assert groups["n"].sum() == 2 * y_test["join_30d"].notna().sum()


def test_split_is_by_person():
    keys = pd.DataFrame({"rep": [0, 0, 0, 1, 1], "agent": [1, 1, 2, 1, 1], "day": [5, 9, 5, 5, 9]})
    test = split_people(keys, test_share=0.5, seed=3)
    frame = keys.assign(test=test)
    assert frame.groupby(["rep", "agent"])["test"].nunique().max() == 1


def test_metrics_on_known_answers():
    y = np.array([1] * 10 + [0] * 90)
    p = np.linspace(1, 0, 100)
    assert top_decile_lift(y, p) == pytest.approx(10.0)
    assert scores(y, p)["roc_auc"] == pytest.approx(1.0)
    table = calibration_table(y, np.full(100, 0.1), bins=10)
    assert len(table) == 1 and table["observed_rate"].iloc[0] == pytest.approx(0.1)
    deciles = calibration_table(y, p)
    assert len(deciles) == 10 and deciles["n"].sum() == 100
    assert deciles["observed_rate"].iloc[-1] == 1.0
