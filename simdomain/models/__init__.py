"""Churn and propensity models, channel values, and a brand's own data.

scikit-learn is imported only in this package, and only when a fit or a targeted
policy needs it. The flow:

- :mod:`~simdomain.models.panel`: snapshots of a simulation -> features known on a
  day + labels of the window after it;
- :mod:`~simdomain.models.estimators`: calibrated gradient boosting and logistic
  pipelines, one per target (:class:`~simdomain.models.estimators.LifecycleModels`);
- :mod:`~simdomain.models.evaluate`: held-out ROC AUC, PR AUC, Brier, calibration
  table, top-decile lift;
- :mod:`~simdomain.models.value`: the cohort model and the channel value table;
- :mod:`~simdomain.models.transactions` and :mod:`~simdomain.models.lifecycle`: a
  brand's order log checked, turned into features, and its lifecycle rates estimated;
- :mod:`~simdomain.models.persist`: model folders with a manifest and a hash check;
- :mod:`~simdomain.models.targeting`: targeted 1:1 messages in the engine, and the
  comparison with uniform messages at the same volume;
- :mod:`~simdomain.models.pipeline`, :mod:`~simdomain.models.outputs` and
  :mod:`~simdomain.models.cli`: ``simdomain fit``.
"""
