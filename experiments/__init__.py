"""experiments — the catalogue of experiment modules (tradeoff, hardware_sweep, ...), the shared trained
networks and the demo; the machinery that runs them (registry, runner, reports) is :mod:`experiments.framework`."""

__all__: list[str] = []
