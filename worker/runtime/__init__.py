"""The Faust shell around the core: the app and its agent, health routes, changelog preload, topics.

The only package that imports Faust: it reads the table, calls :mod:`worker.core`, writes the
new state back and sends what the core produced.
"""
