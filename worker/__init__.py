"""The scoring worker in three layers: ``core`` (pure), ``runtime`` (Faust), ``tools`` (CLIs).

``cli``, ``settings``, ``metrics`` and ``logs`` stay at this level because more than one layer
uses them: the CLI starts the runtime and the tools, the one settings object feeds both, and the
metric bundle and log set-up belong to the process rather than to a layer.
"""
