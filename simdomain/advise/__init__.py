"""Which test next: the expected value of a test's information for the plan.

Stages: what a test would measure under each parameter draw
(:mod:`~simdomain.advise.levers`), the preposterior analysis over the draws
(:mod:`~simdomain.advise.preposterior`), the plan made again after each imagined
outcome (:mod:`~simdomain.advise.replan`), and the ranking with its exports
(:mod:`~simdomain.advise.ranking`, :mod:`~simdomain.advise.export`).
"""
