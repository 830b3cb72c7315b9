"""Measured training points: one algorithm trained on one profile, with what that run counted.

- A circuit profile runs in-situ training on the simulated chip (:mod:`experiments.insitu_runs`,
  the profile's default recipe): the events are the run's own ledger, the accuracy the trained
  chip's (its forward sweep on the test images), the joules per inference measured on that chip.
- A digital profile runs software training (μPC or its Depth-μP twin, Adam; shared by every
  digital profile, :mod:`experiments.trained`): the events of one training step are counted from
  the network's shape (:mod:`pchw.digital`, exactly the operations that run performed), the
  accuracy is the software network's; on an NVIDIA GPU the NVML joules stand beside them.

Both give the events *per training example*, so any price can be changed afterwards and the
energy re-priced exactly (:func:`pchw.events.price` is linear in every price).
"""

from __future__ import annotations

from dataclasses import dataclass

from pchw.events import EnergyReport, EventCounts, price
from pchw.profiles import HardwareProfile, load_profile


@dataclass(frozen=True)
class Measured:
    """A training run's figures.

    Attributes:
        algorithm: ``pc`` or ``bp``.
        profile: the hardware it trained on.
        training: ``in situ`` or ``software (Adam)``.
        test_acc, n_test: accuracy and the number of test images it was measured on.
        counts_per_example: the run's events divided by its training examples.
        inference_energy_j: joules per inference (measured on the trained chip, or the digital count).
        recipe: the recipe, in words.
        run_dir: the run folder (cache) the figures come from.
        measured_gpu_energy_j: NVML joules of the software run, when it ran on an NVIDIA GPU.
    """

    algorithm: str
    profile: HardwareProfile
    training: str
    test_acc: float
    n_test: int
    counts_per_example: EventCounts
    inference_energy_j: float
    recipe: str
    run_dir: str
    examples: int | None = None
    write_pulses: float | None = None
    measured_gpu_energy_j: float | None = None

    def train_report(self, profile: HardwareProfile | None = None) -> EnergyReport:
        """Joules per training example under ``profile`` (default: the one it trained on)."""
        return price(self.counts_per_example, self.profile if profile is None else profile)


def _recipe_text(c) -> str:
    relax = f"{c.n_steps} steps, window {c.update_window}, " if c.algorithm == "pc" else ""
    return (f"{c.recipe}: {relax}lr {c.param_lr:g}, hidden ×{c.hidden_lr_mult:g}, {c.lr_schedule}, "
            f"zero shift {'on' if c.zero_shift else 'off'}")


def _in_situ(algorithm: str, profile: HardwareProfile, profile_name: str, **shape) -> Measured:
    from experiments.insitu_runs import get_insitu
    from simulators.insitu import InsituConfig

    run = get_insitu(InsituConfig(profile=profile_name, algorithm=algorithm, test_every=10**9, **shape))
    return Measured(algorithm=algorithm, profile=profile, training="in situ", test_acc=run.test_acc, n_test=run.n_test,
                    counts_per_example=run.counts.scaled(1.0 / run.examples),
                    inference_energy_j=run.inference_energy_j, recipe=_recipe_text(run.config),
                    run_dir=str(run.run_dir), examples=run.examples, write_pulses=run.write_pulses)


def _software(algorithm: str, profile: HardwareProfile, *, dataset: str, depth: int, width: int, epochs: float,
              n_train: int | None, n_test: int | None, batch_size: int, seed: int) -> Measured:
    """(The software network's accuracy is measured on the whole test set: ``n_test`` is not used.)"""
    from experiments.trained import get_trained
    from pchw.data import load_dataset
    from pchw.digital import digital_inference_counts, digital_training_counts
    from pchw.runlog import History

    net = get_trained(model="bp" if algorithm == "bp" else "mupc", dataset=dataset, depth=depth, width=width,
                      epochs=epochs, seed=seed, n_train=n_train)
    b = batch_size
    counts = digital_training_counts(net.spec, profile, algorithm=algorithm, batch_size=b, n_steps=net.spec.n_hidden)
    infer = price(digital_inference_counts(net.spec, profile, batch_size=b), profile).total_j / b
    return Measured(algorithm=algorithm, profile=profile, training="software (Adam)", test_acc=net.test_acc,
                    n_test=len(load_dataset(dataset).x_test), counts_per_example=counts.scaled(1.0 / b),
                    inference_energy_j=infer, recipe="software reference (Adam)", run_dir=str(net.run_dir),
                    measured_gpu_energy_j=History.read(net.run_dir / "history.csv").last("gpu_energy_j"))


def measure(algorithm: str, profile_name: str, *, dataset: str, depth: int, width: int, epochs: float,
            n_train: int | None = None, n_test: int | None = None, batch_size: int = 64, seed: int = 0,
            backend: str = "numba") -> Measured:
    """Train ``algorithm`` on ``profile_name`` (or take the finished run from the cache) and measure it."""
    if algorithm not in ("pc", "bp"):
        raise ValueError(f"algorithm={algorithm!r} is not one of: pc, bp")
    profile = load_profile(profile_name)
    shape = dict(dataset=dataset, depth=depth, width=width, epochs=epochs, n_train=n_train, n_test=n_test,
                 batch_size=batch_size, seed=seed)
    if profile.is_circuit:
        return _in_situ(algorithm, profile, profile_name, backend=backend, **shape)
    return _software(algorithm, profile, **shape)
