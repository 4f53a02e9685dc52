"""The studio: an interactive what-if page over the engine, served locally.

``simdomain studio [SCENARIO ...]`` opens it (needs ``pip install simdomain[studio]``).
The web parts (:mod:`~simdomain.studio.app`) import Starlette; the rest (folders,
levers, workers, views) imports only the engine.
"""
