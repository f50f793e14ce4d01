"""The pure core: decode, featurize, user state, step scoring, alert policy, sweep, dead letters.

Nothing here imports Faust or a Kafka client (tests/unit/test_layers.py checks it), so every rule
is tested in microseconds and the same code runs under the worker, the replay tools and the bench.
"""
