"""Command-line tools beside the worker (``replay``, ``alerts``): plain Kafka clients, no Faust."""
