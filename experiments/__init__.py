"""experiments — registry, runner, experiment modules, plots and reports."""

__all__: list[str] = []
