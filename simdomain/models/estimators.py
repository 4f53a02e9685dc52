"""scikit-learn pipelines for the lifecycle targets, and one model per target.

Two estimators ship, both probability-calibrated with
:class:`~sklearn.calibration.CalibratedClassifierCV`: by default the classifier is fitted
on 80% of the rows and its probabilities calibrated on the other 20% (one fit, which
keeps large panels fast); ``cv=k`` calibrates on ``k``-fold cross-validated predictions
instead, then refits on all rows. Either way scoring runs a single pipeline.

- ``"gbm"``: :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (wrapped in
  :class:`BoostedTrees`) reading the categorical columns natively and missing values
  as missing;
- ``"logistic"``: the baseline, :class:`~sklearn.linear_model.LogisticRegression` on
  one-hot categories and ``log1p`` of the numbers (missing ones imputed, with an
  indicator).

Any scikit-learn classifier with ``predict_proba`` can take their place in
:class:`LifecycleModels` (it is cloned per target).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

ESTIMATORS = ("gbm", "logistic")
MIN_EACH = 10
"""Rows of each outcome a target needs to be fitted (and calibrated)."""


def make_gbm(random_state: int = 0, *, max_iter: int = 200, learning_rate: float = 0.1,
             max_leaf_nodes: int = 31, calibration: str = "isotonic",
             cv: int | None = None) -> BaseEstimator:
    """Calibrated gradient boosting on the panel's frame (categories read natively)."""
    booster = BoostedTrees(max_iter=max_iter, learning_rate=learning_rate,
                           max_leaf_nodes=max_leaf_nodes, random_state=random_state)
    return _calibrated(booster, calibration, cv, random_state)


class BoostedTrees(ClassifierMixin, BaseEstimator):
    """:class:`~sklearn.ensemble.HistGradientBoostingClassifier` on a frame whose
    categorical columns it codes itself (fast at prediction; unseen categories and
    all-missing columns handled).

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, random_state
        Passed to the booster, which stops early on a 10% validation split.

    Attributes
    ----------
    booster_ : HistGradientBoostingClassifier
    categories_ : dict[str, list]
        Categories of each categorical column seen in fit (others code as missing).
    empty_ : ndarray of bool
        Columns entirely missing in fit (set to 0: scikit-learn 1.9 fails on them).
    feature_names_in_ : ndarray of str
    classes_ : ndarray
    """

    def __init__(self, *, max_iter: int = 200, learning_rate: float = 0.1,
                 max_leaf_nodes: int = 31, random_state: int = 0) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> BoostedTrees:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.categories_ = {c: list(X[c].cat.categories) for c in X.columns
                            if isinstance(X[c].dtype, pd.CategoricalDtype)}
        codes = self._codes(X)
        self.empty_ = np.all(np.isnan(codes), axis=0)
        codes[:, self.empty_] = 0.0
        mask = np.array([c in self.categories_ for c in X.columns])
        self.booster_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, categorical_features=mask if mask.any() else None,
            early_stopping=True, validation_fraction=0.1, n_iter_no_change=10,
            random_state=self.random_state)
        self.booster_.fit(codes, y)
        self.classes_ = self.booster_.classes_
        return self

    def _codes(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.feature_names_in_)), dtype=np.float32)
        for i, column in enumerate(self.feature_names_in_):
            values = X[column]
            categories = self.categories_.get(column)
            if categories is None:
                out[:, i] = values.to_numpy(dtype=np.float32, na_value=np.nan)
                continue
            if not (isinstance(values.dtype, pd.CategoricalDtype)
                    and list(values.cat.categories) == categories):
                values = pd.Series(_recategorized(values, categories))
            code = values.cat.codes.to_numpy().astype(np.float32)
            code[code < 0] = np.nan
            out[:, i] = code
        return out

    def _prepared(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        codes = self._codes(X)
        codes[:, self.empty_] = 0.0
        return codes

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster_.decision_function(self._prepared(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict_proba(self._prepared(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict(self._prepared(X))


def make_logistic(random_state: int = 0, *, C: float = 1.0, calibration: str = "sigmoid",
                  cv: int | None = None) -> BaseEstimator:
    """Calibrated logistic regression on one-hot categories and ``log1p`` numbers."""
    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                          keep_empty_features=True),
                            FunctionTransformer(_log1p_nonnegative, feature_names_out="one-to-one"),
                            StandardScaler())
    prepare = ColumnTransformer([
        ("categories", OneHotEncoder(handle_unknown="ignore"),
         make_column_selector(dtype_include="category")),
        ("numbers", numbers, make_column_selector(dtype_exclude="category")),
    ])
    model = Pipeline([("prepare", prepare),
                      ("logistic", LogisticRegression(C=C, max_iter=2000))])
    return _calibrated(model, calibration, cv, random_state)


def make_estimator(name: str, random_state: int = 0) -> BaseEstimator:
    """A shipped estimator by name (see :data:`ESTIMATORS`)."""
    if name == "gbm":
        return make_gbm(random_state)
    if name == "logistic":
        return make_logistic(random_state)
    raise ValueError(f"The 'estimator' parameter must be one of {list(ESTIMATORS)} or a "
                     f"scikit-learn classifier. Got {name!r} instead.")


def _recategorized(values: pd.Series, categories: list) -> pd.Categorical:
    """``values`` with exactly ``categories``; other values become missing."""
    values = values.astype(object)
    return pd.Categorical(values.where(values.isin(categories)), categories=categories)


def _log1p_nonnegative(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(x, 0.0))


def _calibrated(estimator: BaseEstimator, method: str, cv: int | None,
                random_state: int) -> BaseEstimator:
    """Calibrate on a 20% hold-out (``cv=None``) or on ``cv``-fold predictions."""
    if cv is None:
        split = StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=random_state)
        return CalibratedClassifierCV(estimator, method=method, cv=split, ensemble=True)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    return CalibratedClassifierCV(estimator, method=method, cv=folds, ensemble=False)


class InvalidParameterError(ValueError, TypeError):
    """A parameter of an estimator has a wrong type or value (as scikit-learn's)."""


class LifecycleModels(BaseEstimator):
    """One calibrated classifier per lifecycle target, fitted on a panel.

    Parameters
    ----------
    estimator
        ``"gbm"``, ``"logistic"`` or an unfitted scikit-learn classifier (cloned for
        each target; it receives the feature frame with categorical columns).
    targets
        Label columns to fit; default: every label column given to :meth:`fit`.
    max_rows
        Rows drawn at random (without replacement) per target to fit on, to bound the
        time on large panels; ``None`` uses them all.
    random_state
        Seed of the row draw and of the estimators.

    Attributes
    ----------
    estimators_ : dict[str, estimator]
        The fitted classifier of each target.
    targets_ : list[str]
    feature_names_in_ : ndarray of str
    n_features_in_ : int
    categories_ : dict[str, list[str]]
        Categories of each categorical feature seen in fit; at prediction the same
        categories are imposed (others read as missing).
    n_rows_ : dict[str, int]
        Rows each target was fitted on.
    positive_rate_ : dict[str, float]
        Share of positive labels each target was fitted on.
    skipped_ : dict[str, str]
        Targets left out (only when ``targets`` is None) and why: fewer than
        :data:`MIN_EACH` rows of either outcome (e.g. a label window longer than the
        horizon).
    """

    def __init__(self, estimator: str | BaseEstimator = "gbm", *,
                 targets: Sequence[str] | None = None, max_rows: int | None = 200_000,
                 random_state: int = 0) -> None:
        self.estimator = estimator
        self.targets = targets
        self.max_rows = max_rows
        self.random_state = random_state

    def _validate(self) -> None:
        if not (isinstance(self.estimator, str) and self.estimator in ESTIMATORS
                or hasattr(self.estimator, "fit")):
            raise InvalidParameterError(
                f"The 'estimator' parameter of LifecycleModels must be one of {list(ESTIMATORS)} "
                f"or a scikit-learn classifier. Got {self.estimator!r} instead.")
        if self.max_rows is not None and (not isinstance(self.max_rows, Integral)
                                          or self.max_rows < 10):
            raise InvalidParameterError("The 'max_rows' parameter of LifecycleModels must be an "
                                        f"int of at least 10 or None. Got {self.max_rows!r} "
                                        "instead.")
        if not isinstance(self.random_state, Integral):
            raise InvalidParameterError("The 'random_state' parameter of LifecycleModels must be "
                                        f"an int. Got {self.random_state!r} instead.")

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> LifecycleModels:
        """Fit one classifier per target on the rows where its label is known.

        ``X`` is the feature frame, ``y`` the label frame (1, 0 or NaN = not at risk).
        """
        self._validate()
        targets = list(y.columns) if self.targets is None else list(self.targets)
        unknown = sorted(set(targets) - set(y.columns))
        if unknown:
            raise ValueError(f"The 'targets' parameter names labels not in y: {unknown}")
        rng = np.random.default_rng(self.random_state)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.categories_ = {c: list(X[c].cat.categories) for c in X.columns
                            if isinstance(X[c].dtype, pd.CategoricalDtype)}
        self.estimators_: dict[str, Any] = {}
        self.n_rows_: dict[str, int] = {}
        self.positive_rate_: dict[str, float] = {}
        self.skipped_: dict[str, str] = {}
        for i, target in enumerate(targets):
            label = y[target].to_numpy(dtype=float)
            rows = np.flatnonzero(~np.isnan(label))
            if self.max_rows is not None and len(rows) > self.max_rows:
                rows = np.sort(rng.choice(rows, size=self.max_rows, replace=False))
            positives = label[rows]
            events = int(positives.sum()) if len(rows) else 0
            if min(events, len(rows) - events) < MIN_EACH:
                reason = (f"needs {MIN_EACH} rows of each outcome; got {len(rows)} rows, "
                          f"{events} positive")
                if self.targets is not None:
                    raise ValueError(f"target {target!r} {reason}")
                self.skipped_[target] = reason
                continue
            seed = int(self.random_state) + i
            model = (make_estimator(self.estimator, seed) if isinstance(self.estimator, str)
                     else clone(self.estimator))
            model.fit(X.iloc[rows], positives.astype(int))
            self.estimators_[target] = model
            self.n_rows_[target] = len(rows)
            self.positive_rate_[target] = float(positives.mean())
        self.targets_ = [t for t in targets if t in self.estimators_]
        if not self.targets_:
            raise ValueError(f"no target could be fitted: {self.skipped_}")
        return self

    def conform(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with the fitted columns, in order, and the fitted categories."""
        check_is_fitted(self)
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the features {missing}")
        X = X[list(self.feature_names_in_)]
        changes = {}
        for column, categories in self.categories_.items():
            dtype = X[column].dtype
            if not (isinstance(dtype, pd.CategoricalDtype) and list(dtype.categories) == categories):
                changes[column] = _recategorized(X[column], categories)
        return X.assign(**changes) if changes else X

    def predict_proba(self, X: pd.DataFrame, targets: Sequence[str] | None = None) -> pd.DataFrame:
        """Probability of each target's event: one column per target, one row per row of X.

        Unlike a single classifier's ``predict_proba`` (one column per class), this
        returns the positive class only, one column per target.
        """
        check_is_fitted(self)
        X = self.conform(X)
        targets = self.targets_ if targets is None else list(targets)
        return pd.DataFrame({t: self.estimators_[t].predict_proba(X)[:, 1] for t in targets},
                            index=X.index)

    def predict(self, X: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
        """0/1 per target: whether its probability reaches ``threshold``."""
        return (self.predict_proba(X) >= threshold).astype(np.int8)
