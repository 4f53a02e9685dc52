"""The brand's twin: its people and processes fitted on its own data, in days.

``history`` (people's timelines) -> ``btyd`` (Pareto/NBD orders), ``rates`` (first order,
joining, KOC), ``deletion`` (frailty by stage and channel), ``value`` (order-value tiers),
``season`` (month index and sale spikes), ``selfcheck`` (the model's own holdout error),
``response`` and ``acquisition`` (each channel's adds-versus-spend curve), ``yields``
(what an add is worth by channel) -> ``calibrate`` (the scenario, people and draws) -> ``write``; ``people`` draws each
replication's latent state; ``baseline`` is the BG/NBD a backtest compares with. See
``docs/twin.md``. Imports only the scenario, the data bundle's types and errors.
"""
