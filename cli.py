"""The ``pchw`` command line: parses options and dispatches; no maths lives here."""

from __future__ import annotations

import sys

import click

EXIT_FAILED = 1  # the input was valid but the work failed (failed grid points)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class _OneLineErrors(click.Group):
    """Print every user error as one ``error: ...`` line instead of usage blocks or tracebacks.

    A :class:`~pchw.errors.PchwError` exits with its ``exit_code`` (2 for bad input); Ctrl-C exits
    130 with the interrupted loop's own line (e.g. "interrupted at iteration N; checkpoint saved").
    """

    def main(self, args=None, prog_name=None, **kwargs):  # noqa: D401 - click's signature
        from pchw.errors import PchwError

        try:
            return super().main(args=args, prog_name=prog_name, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" (see 'pchw {exc.ctx.command_path.split(' ', 1)[-1]} --help')" if exc.ctx else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt into Abort; keep its message
            cause = exc.__cause__
            if isinstance(cause, EOFError):  # click treats end of input like Ctrl-C; it is not one
                click.echo(f"error: unexpected end of input ({cause})", err=True)
                sys.exit(EXIT_BAD_INPUT)
            click.echo(str(cause) if isinstance(cause, KeyboardInterrupt) and str(cause) else "interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except PchwError as exc:
            click.echo(f"error: {exc.one_line()}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """pchw — predictive-coding hardware co-design: train μPC, simulate circuits, price joules."""
    from pchw import smoke

    if smoke.enabled():
        click.echo(f"note: smoke mode ({smoke.ENV_VAR}=1): data sets cut to {smoke.TRAIN_SAMPLES} training and "
                   f"{smoke.TEST_SAMPLES} test samples, --iters divided by {smoke.ITERATION_DIVISOR}; "
                   f"the numbers are not results", err=True)


# --------------------------------------------------------------------------------------- train
@main.command()
@click.option("--model", type=click.Choice(["mupc", "sp", "bp"]), default="mupc", show_default=True,
              help="μPC, standard-parameterisation PC, or Depth-μP backprop.")
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist", "synthetic"]), default="mnist",
              show_default=True, help="Training data set.")
@click.option("--depth", type=int, default=9, show_default=True,
              help="Number of weight matrices L (hidden layers H = L − 1); at least 2.")
@click.option("--width", type=int, default=128, show_default=True, help="Hidden width N.")
@click.option("--act", type=click.Choice(["relu", "tanh", "linear"]), default="relu", show_default=True,
              help="Activation function φ.")
@click.option("--no-skip", is_flag=True, help="Remove the residual skip connections.")
@click.option("--iters", type=int, default=None, help="Weight updates to train for (default: one epoch).")
@click.option("--epochs", type=float, default=None, help="Epochs to train for (alternative to --iters).")
@click.option("--n-steps", type=int, default=None,
              help="Inference steps T per batch (default: H; with --on, 20 circuit steps after the forward sweep).")
@click.option("--activity-lr", type=float, default=0.5, show_default=True,
              help="β: step of gradient descent on the batch-mean free energy.")
@click.option("--param-lr", type=float, default=None,
              help="Adam learning rate (default 0.1); with --on, the SGD rate in μP units (default 0.03).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Samples per batch.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of weight init and data order.")
@click.option("--test-every", type=int, default=100, show_default=True,
              help="Evaluate test accuracy and checkpoint every this many iterations.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", type=click.Choice(["float32", "float64", "bfloat16"]), default="float32", show_default=True,
              help="Floating-point precision; bfloat16: bf16 matmul operands, fp32 accumulation and state.")
@click.option("--cuda-graph/--no-cuda-graph", default=True, show_default=True,
              help="On CUDA, replay the PC step as a CUDA graph (the eager step's numbers, far fewer launches).")
@click.option("--n-train", type=int, default=None, help="Use only the first N training samples.")
@click.option("--n-test", type=int, default=None, help="Use only the first N test samples.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder for config.json, history.csv and checkpoint.pt.")
@click.option("--resume", is_flag=True, help="Continue the run saved in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--on", "on_profile", default=None,
              help="Train in situ on this circuit profile (preset or TOML): the crossbars learn in place "
                   "(mupc/sp: predictive coding; bp: analog SGD through the same arrays). The recipe options "
                   "below default to the profile's recipe (see the README).")
@click.option("--hidden-lr-mult", type=float, default=None,
              help="With --on: extra SGD-rate factor of the input and hidden crossbars (recipe default).")
@click.option("--circuit-h", type=float, default=None,
              help="With --on: dt/τ of the circuit's relaxation (default: the recipe's, else the profile's).")
@click.option("--update-window", type=int, default=None,
              help="With --on: average the errors and activations of the update over the last this many of "
                   "the --n-steps (lifts the learning signal out of per-step MVM noise; 0 = final values).")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default=None,
              help="With --on: the SGD rate over the run (cosine decays it to 0; recipe default).")
@click.option("--zero-shift/--no-zero-shift", default=None,
              help="With --on: read each weight against a reference at its device's symmetry point (recipe default).")
@click.option("--backend", type=click.Choice(["numba", "numpy", "torch"]), default="numba", show_default=True,
              help="With --on: the circuit backend (torch runs on --device, e.g. cuda).")
def train(model, dataset, depth, width, act, no_skip, iters, epochs, n_steps, activity_lr, param_lr,
          batch_size, seed, test_every, device, dtype, cuda_graph, n_train, n_test, out_dir, resume, quiet, on_profile,
          hidden_lr_mult, circuit_h, update_window, zero_shift, lr_schedule, backend) -> None:
    """Train a μPC / SP / backprop network (in software, or in situ with --on) and print its accuracy."""
    recipe = (hidden_lr_mult, circuit_h, update_window, zero_shift, lr_schedule)
    if on_profile is None and any(v is not None for v in recipe):
        raise click.UsageError("--hidden-lr-mult, --update-window, --zero-shift, --lr-schedule and --circuit-h "
                               "train in situ: give --on PROFILE")
    if on_profile is not None:
        _train_insitu(model, dataset, depth, width, act, no_skip, iters, epochs, n_steps, param_lr, batch_size,
                      seed, test_every, n_train, n_test, out_dir, resume, quiet, on_profile, hidden_lr_mult, circuit_h,
                      update_window, zero_shift, lr_schedule, backend, device)
        return
    from models.training import TrainConfig
    from models.training import train as run_training
    from pchw import smoke

    iters = smoke.iterations(iters)
    config = TrainConfig(
        model=model, dataset=dataset, depth=depth, width=width, act=act, skip=not no_skip,
        iters=iters, epochs=epochs, n_steps=n_steps, activity_lr=activity_lr,
        param_lr=0.1 if param_lr is None else param_lr,
        batch_size=batch_size, seed=seed, test_every=test_every, device=device, dtype=dtype,
        n_train=n_train, n_test=n_test, cuda_graph=cuda_graph,
    )
    result = run_training(config, out_dir=out_dir, resume=resume, show_progress=not quiet)
    energy = f", measured GPU energy {result.gpu_energy_j:.1f} J" if result.gpu_energy_j is not None else ""
    click.echo(
        f"{model} depth={depth} width={width} {dataset}: test accuracy {100 * result.test_acc:.2f}% "
        f"after {result.iterations} iterations ({result.wall_s:.1f} s{energy})"
    )
    if result.out_dir is not None:
        click.echo(f"run saved to {result.out_dir}")


def _insitu_device(device: str, backend: str) -> str | None:
    """--device for a circuit backend: only torch places its arrays; numba and numpy always run on the CPU."""
    if device == "auto" or (device == "cpu" and backend != "torch"):
        return None
    return device


def _train_insitu(model, dataset, depth, width, act, no_skip, iters, epochs, n_steps, param_lr, batch_size, seed,
                  test_every, n_train, n_test, out_dir, resume, quiet, on_profile, hidden_lr_mult, circuit_h,
                  update_window, zero_shift, lr_schedule, backend, device) -> None:
    from pchw import smoke
    from simulators.insitu import InsituConfig, train_insitu

    iters = smoke.iterations(iters)
    config = InsituConfig(
        profile=on_profile, algorithm="bp" if model == "bp" else "pc", dataset=dataset, depth=depth, width=width,
        act=act, skip=not no_skip, param="sp" if model == "sp" else "mupc", iters=iters, epochs=epochs,
        n_steps=n_steps, param_lr=param_lr, hidden_lr_mult=hidden_lr_mult, h=circuit_h, update_window=update_window,
        zero_shift=zero_shift, lr_schedule=lr_schedule,
        batch_size=batch_size, seed=seed, test_every=test_every,
        n_train=n_train, n_test=n_test, backend=backend, device=_insitu_device(device, backend),
    )
    r = train_insitu(config, out_dir=out_dir, resume=resume, show_progress=not quiet)
    c = r.config
    recipe = f"{c.recipe}: n_steps {c.n_steps}, window {c.update_window}, " if c.algorithm == "pc" else f"{c.recipe}: "
    click.echo(f"in situ on {on_profile}: {model} depth={depth} width={width} {dataset} ({recipe}lr {c.param_lr:g}, "
               f"hidden ×{c.hidden_lr_mult:g}, {c.lr_schedule}, zero shift {'on' if c.zero_shift else 'off'})")
    click.echo(f"  chip test accuracy {100 * r.test_acc:.2f}% on {r.n_test} test images after {r.iterations} "
               f"iterations ({r.wall_s:.1f} s); {r.energy_j / r.examples:.3e} J per training example, "
               f"{r.inference_energy_j:.3e} J per inference (measured on the trained chip)")
    click.echo(f"  energy of the whole run {r.energy_j:.3e} J ({r.write_pulses:.3g} write pulses); by component:")
    for component, joules in sorted(r.energy_components_j.items(), key=lambda kv: -kv[1]):
        if joules > 0:
            click.echo(f"    {component:<14} {joules:11.3e} J  {100 * joules / r.energy_j:5.1f}%")
    if r.out_dir is not None:
        click.echo(f"run saved to {r.out_dir}")


# ---------------------------------------------------------------------------------------- demo
@main.command()
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist", "synthetic"]), default="mnist",
              show_default=True, help="Data set of the demo.")
@click.option("--depth", type=int, default=5, show_default=True, help="Weight matrices L of every network.")
@click.option("--width", type=int, default=128, show_default=True, help="Hidden width N.")
@click.option("--epochs", type=float, default=1.0, show_default=True, help="Passes over the training examples.")
@click.option("--n-train", type=int, default=12800, show_default=True,
              help="Training examples of every run (0: the whole training set).")
@click.option("--n-test", type=int, default=2000, show_default=True,
              help="Test images every in-situ accuracy is measured on (0: the whole test set).")
@click.option("--samples", type=int, default=1000, show_default=True,
              help="Test samples deployed through the circuit per hardware-sweep point.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for the experiment points.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/demo", show_default=True,
              help="Folder of the demo report (an earlier demo there is resumed: finished points are kept).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(dataset, depth, width, epochs, n_train, n_test, samples, workers, out_dir, quiet) -> None:
    """Train PC and backprop on every hardware preset (in situ on circuits, in software on digital chips),
    sweep the analog circuit, and write one report."""
    from experiments.demo import run_demo

    result = run_demo(out_dir, dataset=dataset, depth=depth, width=width, epochs=epochs, n_train=n_train or None,
                      n_test=n_test or None, samples=samples, workers=workers, show_progress=not quiet)
    rows = [r for r in result.tradeoff.rows if r.get("status") == "ok"]
    click.echo(f"\n{dataset}, depth {depth}, width {width}, {epochs:g} pass(es) over {n_train or 'all'} training "
               "examples: measured accuracy (95% interval, test images) and joules")
    click.echo(f"  {'algorithm · profile':<32} {'test acc':>8} {'95% interval':>15} {'n':>6} {'J/train ex.':>11} "
               f"{'J/inference':>11}  dominant")
    for r in rows:
        label = f"{str(r['algorithm']).upper()} · {r['profile']}"
        ci = f"{100 * float(r['test_acc_ci_low']):.1f}–{100 * float(r['test_acc_ci_high']):.1f}%"
        click.echo(f"  {label:<32} {100 * float(r['test_acc']):7.2f}% {ci:>15} {int(float(r['n_test'])):>6} "
                   f"{float(r['train_energy_j']):11.3e} {float(r['inference_energy_j']):11.3e}  {r['train_dominant']}")
    click.echo(f"report: {result.report} (and report.html beside it)")
    failed = result.tradeoff.n_failed + result.sweep.n_failed
    if failed:
        total = result.tradeoff.n_points + result.sweep.n_points
        click.echo(f"error: {failed} of {total} demo points failed; their tracebacks are in "
                   f"{result.out_dir}/*/errors/ (rerun `pchw demo` to retry them)", err=True)
        sys.exit(EXIT_FAILED)


# ------------------------------------------------------------------------------------ profiles
@main.group()
def profiles() -> None:
    """Hardware profiles: cited prices and circuit constants (TOML)."""


@profiles.command("list")
def profiles_list() -> None:
    """List the shipped presets: generic ones, then chips (specific published silicon, see `pchw validate`)."""
    from pchw.profiles import list_chips, list_profiles, load_profile

    width = max(len(n) for n in list_profiles() + list_chips())
    for title, names in (("presets", list_profiles()), ("chips (published silicon; pchw validate)", list_chips())):
        click.echo(f"{title}:")
        for name in names:
            p = load_profile(name)
            click.echo(f"  {name:<{width}}  {p.substrate.value:<18} {p.description}")


@profiles.command("show")
@click.argument("name")
def profiles_show(name) -> None:
    """Print a preset, chip or TOML file as TOML with every value's source: a template to copy."""
    from pchw.profiles import load_calibration, load_profile, profile_to_toml
    from pchw.published import calibration_to_toml

    click.echo(profile_to_toml(load_profile(name)) + calibration_to_toml(load_calibration(name)), nl=False)


@profiles.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def profiles_validate(file) -> None:
    """Check a user's profile file; print one line naming the first problem, or 'ok'."""
    from pchw.profiles import load_profile

    p = load_profile(file)
    click.echo(f"ok: {p.name} ({p.substrate.value}), {len(p.sources)} cited values")


def _energy_table(rows, title: str) -> None:
    """Print energy reports as a table: one row each, the total and its largest components."""
    if title:
        click.echo(title)
    for label, report in rows:
        parts = sorted(((v, k) for k, v in report.components_j.items() if v > 0), reverse=True)[:3]
        share = ", ".join(f"{k} {100 * v / report.total_j:.0f}%" for v, k in parts) if report.total_j else "free"
        click.echo(f"  {label:<34} {report.total_j:11.3e} J   {share}")


def _load_network(checkpoint, samples, seed=0):
    """A trained network from a software (checkpoint.pt) or in-situ (checkpoint.npz) run folder."""
    from pathlib import Path

    from models.training import load_trained
    from pchw.data import load_dataset

    if (Path(checkpoint) / "checkpoint.npz").exists():
        from simulators.insitu import load_insitu

        spec, weights, config, _ = load_insitu(checkpoint)
    else:
        spec, weights, config = load_trained(checkpoint)
    data = load_dataset(config.dataset, n_test=samples)
    return spec, weights, config, data


# ------------------------------------------------------------------------------------ simulate
@main.command()
@click.option("--checkpoint", type=click.Path(file_okay=False, exists=True), required=True,
              help="Run folder written by `pchw train`.")
@click.option("--profile", default="ideal", show_default=True, help="Preset name or TOML file.")
@click.option("--n-steps", type=int, default=0, show_default=True,
              help="Steps of PC dynamics after the forward sweep (the output stays free).")
@click.option("--init", type=click.Choice(["sweep", "cascade"]), default="sweep", show_default=True,
              help="How a prediction starts: the physical forward sweep (each crossbar read once, inputs held) "
                   "or the emulated forward cascade of --ff-steps.")
@click.option("--ff-steps", type=int, default=None,
              help="With --init cascade: its steps (default: enough for the H+1-lag cascade to settle).")
@click.option("--dt-s", type=float, default=None, help="Step in seconds (default: the profile's).")
@click.option("--tau-s", type=float, default=None, help="Integrator time constant in seconds (default: profile's).")
@click.option("--method", type=click.Choice(["euler", "heun"]), default="euler", show_default=True,
              help="Fixed-step integrator.")
@click.option("--samples", type=int, default=None, help="Test samples to run (default: the whole test set).")
@click.option("--backend", type=click.Choice(["numba", "numpy", "brian2", "torch"]), default="numba",
              show_default=True,
              help="Simulation backend (brian2: an independent Brian2 network of the same circuit; torch: batched, "
                   "CPU or CUDA).")
@click.option("--device", default=None, help="With --backend torch: cpu, cuda or cuda:N (default cpu).")
@click.option("--spiking", is_flag=True, help="brian2: the PC phase's errors travel as rate-coded spikes.")
@click.option("--spike-rate-hz", type=float, default=1000.0, show_default=True,
              help="--spiking: firing rate of an error of full scale (Hz).")
@click.option("--spike-duration-s", type=float, default=0.1, show_default=True,
              help="--spiking: spike-counting window per circuit step (s); budget = rate × duration.")
@click.option("--spike-full-scale", type=float, default=4.0, show_default=True,
              help="--spiking: the |error| that fires at --spike-rate-hz (larger errors are clipped).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the noise sources.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the full result as JSON here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def simulate(checkpoint, profile, n_steps, init, ff_steps, dt_s, tau_s, method, samples, backend, device, spiking,
             spike_rate_hz, spike_duration_s, spike_full_scale, seed, json_path, quiet) -> None:
    """Deploy a trained network on a circuit profile: test accuracy and energy per inference."""
    from experiments.deploy import deploy
    from pchw.profiles import load_profile
    from pchw.runlog import check_writable, progress, write_json

    if json_path:
        check_writable(json_path)
    hw = load_profile(profile)
    if not hw.is_circuit:
        raise click.UsageError(f"--profile {hw.name} is digital; price digital hardware with `pchw energy`")
    coding = None
    if spiking:
        if backend != "brian2":
            raise click.UsageError("--spiking needs --backend brian2")
        if n_steps <= 0:
            raise click.UsageError("--spiking needs --n-steps > 0: the spiking PC phase after the forward sweep")
        from simulators.backends.brian2_backend import SpikeCoding

        try:
            coding = SpikeCoding(rate_hz=spike_rate_hz, duration_s=spike_duration_s, full_scale=spike_full_scale)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    spec, weights, _, data = _load_network(checkpoint, samples)
    with progress(len(data.x_test), desc=f"simulate {hw.name}", enabled=not quiet) as bar:
        result = deploy(spec, weights, data.x_test, data.y_test, profile=hw, n_steps=n_steps, init=init,
                        ff_steps=ff_steps, device=device,
                        dt_s=dt_s, tau_s=tau_s, method=method, backend=backend, seed=seed, spiking=coding,
                        on_progress=bar.update)
    s = result.settings
    start = "forward sweep" if s["init"] == "sweep" else f"forward cascade of {s['ff_steps']} steps"
    click.echo(f"{hw.name}: {result.n_samples} test samples, {start} + PC {s['n_steps']} "
               f"steps of dt {s['dt_s']:.3g} s (dt/τ = {s['h']:.3g}, {s['method']}, {s['backend']})")
    click.echo(f"  circuit test accuracy  {100 * result.accuracy:6.2f}%   "
               f"(software {100 * result.software_accuracy:.2f}%, same prediction on {100 * result.agreement:.2f}% "
               f"of samples; max |∂F/∂z| {result.max_grad:.2e})")
    click.echo(f"  energy per inference   {result.energy.total_j:.3e} J")
    for component, joules in sorted(result.energy.components_j.items(), key=lambda kv: -kv[1]):
        if joules > 0:
            click.echo(f"    {component:<14} {joules:11.3e} J  {100 * joules / result.energy.total_j:5.1f}%")
    click.echo(f"  compile/build {result.compile_s:.1f} s, run {result.run_s:.1f} s")
    if json_path:
        write_json(json_path, result.to_dict())


# -------------------------------------------------------------------------------------- energy
@main.command()
@click.option("--checkpoint", type=click.Path(file_okay=False, exists=True), required=True,
              help="Run folder written by `pchw train`.")
@click.option("--profiles", "names", default=None,
              help="Comma-separated presets or TOML files (default: every preset but ideal).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Samples per weight update (default: the run's).")
@click.option("--n-steps", type=click.IntRange(min=0), default=None,
              help="PC inference steps per example (default: the run's T).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the rows as JSON here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def energy(checkpoint, names, batch_size, n_steps, json_path, quiet) -> None:
    """Joules per training example and per inference, BP and PC, on every hardware profile."""
    from experiments.energy import energy_rows
    from pchw.profiles import list_profiles, load_profile
    from pchw.runlog import check_writable, progress, write_json

    if json_path:
        check_writable(json_path)
    chosen = names.split(",") if names else [n for n in list_profiles() if n != "ideal"]
    hw = [load_profile(n.strip()) for n in chosen]
    spec, weights, config, data = _load_network(checkpoint, 16)
    y = data.one_hot(data.y_test).astype(float)
    batch_size = batch_size or config.batch_size
    rows = []
    with progress(len(hw), desc="price profiles", enabled=not quiet) as bar:
        for profile in hw:  # one at a time: a circuit profile runs the simulator (and compiles it once)
            bar.set_postfix_str(profile.name)
            rows += energy_rows(spec, weights, [profile], x=data.x_test.astype(float), y=y, batch_size=batch_size,
                                n_steps=n_steps if n_steps is not None else config.inference_steps)
            bar.update(1)
    click.echo(f"depth {spec.depth}, width {spec.width}, {spec.input_dim}→{spec.output_dim}; "
               f"batch {batch_size}; joules per example (largest components):")
    _energy_table([(f"{r.profile} {r.algorithm.upper()} {r.phase}", r.report) for r in rows], title="")
    if json_path:
        write_json(json_path, [r.to_dict() for r in rows])


# ------------------------------------------------------------------------------------ validate
@main.command()
@click.argument("profiles", nargs=-1)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the rows (published, pchw, ratio, band, workload, source) as JSON here.")
@click.option("--figure", "figure_path", type=click.Path(dir_okay=False), default=None,
              help="Also plot published against pchw's figures (log-log, one point per chip and metric) here.")
def validate(profiles, json_path, figure_path) -> None:
    """Check pchw's counting and pricing against published silicon: every chip preset's measured figures
    and every generic preset's stands-for claims (PROFILES: chips, presets or TOML files; default: all).
    Exits with status 1 when a ratio pchw/published leaves the band its preset declares."""
    from pchw.runlog import write_json
    from pchw.validate import out_of_band, table_lines
    from pchw.validate import validate as run_validation

    rows = run_validation(list(profiles) or None)
    for line in table_lines(rows):
        click.echo(line)
    if json_path:
        write_json(json_path, [r.to_dict() for r in rows])
    if figure_path:
        from experiments.validation_plot import plot_validation

        click.echo(f"figure: {plot_validation(rows, figure_path)}")
    bad = out_of_band(rows)
    click.echo(f"{len(rows) - len(bad)} of {len(rows)} figures within their band (pchw's figures are estimates; "
               "calibration rows agree by construction, cross-checks do not)")
    if bad:
        r = bad[0]
        click.echo(f"error: {len(bad)} of {len(rows)} figures outside their band; first: {r.profile} on "
                   f"{r.chip}:{r.figure.id} ratio {r.ratio:.3g} outside ×/÷{r.band:g} (dominant {r.dominant})",
                   err=True)
        sys.exit(EXIT_FAILED)


# ---------------------------------------------------------------------------------------- data
@main.group()
def data() -> None:
    """Data sets: where they come from and whether they are available."""


@data.command("status")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with IDX files (overrides PCHW_DATA).")
def data_status(data_dir) -> None:
    """List the data sets, whether each is available, and its source (or the fix)."""
    from pchw.data import dataset_status

    rows = dataset_status(data_dir=data_dir)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "yes" if r["available"] else "no "
        click.echo(f"{r['name']:<{width}}  {mark}  {r['source']}")


# ---------------------------------------------------------------------------------- experiments
@main.command("list")
def list_experiments() -> None:
    """List the registered experiments: name, points in the default grid and title (or why it cannot be
    imported)."""
    from experiments.framework import expand_grid
    from experiments.framework.registry import get, status

    rows = status()
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        if not r["installed"]:
            click.echo(f"{r['name']:<{width}}  not installed ({r['error']})")
            continue
        module = get(r["name"])
        points = len(expand_grid(module.Config, module.GRID))
        click.echo(f"{r['name']:<{width}}  {points:>3} points  {r['title']}")


@main.command()
@click.argument("experiment")
@click.option("--set", "settings", multiple=True, metavar="KEY=V1,V2",
              help="Replace (or add) a grid axis: the Config field KEY takes the values V1, V2, ... (repeatable).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local worker processes (one BLAS/torch thread each).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the points on an existing Dask cluster, e.g. tcp://host:8786 (overrides --workers).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Results folder (default results/EXPERIMENT/STAMP); an existing one is resumed.")
@click.option("--results-root", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Parent of the default results folders.")
@click.option("--dry-run", is_flag=True, help="Print the points and their run ids; run and write nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="A study (codesign): finished trials to run to, per study (pruned ones count).")
@click.option("--fidelity", type=click.IntRange(min=1), default=None,
              help="A study: training examples of one search trial (the reported front is re-run at full fidelity).")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="A study: start no trial after this many seconds of each study's search.")
@click.option("--target-acc", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="A study: the test accuracy (fraction) of the headline: the cheapest design reaching it.")
def run(experiment, settings, workers, scheduler, out_dir, results_root, dry_run, quiet, trials, fidelity, timeout_s,
        target_acc) -> None:
    """Run EXPERIMENT over its grid (see `pchw list`; or module:package.module), resuming --out.

    A study (codesign) searches instead of expanding a grid: an optimiser proposes each trial."""
    from experiments.framework import parse_set, run_experiment
    from experiments.framework.registry import get

    overrides = parse_set(settings)
    bounds = {"trials": trials, "fidelity": fidelity, "timeout_s": timeout_s, "target_acc": target_acc}
    if any(v is not None for v in bounds.values()) and not hasattr(get(experiment), "run_study"):
        raise click.UsageError(f"--trials, --fidelity, --timeout-s and --target-acc bound a study (codesign); "
                               f"{experiment} is a grid: use --set")
    overrides.update({k: [str(v)] for k, v in bounds.items() if v is not None})
    s = run_experiment(experiment, overrides=overrides, out_dir=out_dir, workers=workers, scheduler=scheduler,
                       dry_run=dry_run, show_progress=not quiet, results_root=results_root)
    if getattr(s, "lines", None):  # a study summarises itself (experiments.codesign)
        click.echo("\n".join(s.lines))
        return
    if dry_run:
        for row in s.rows:
            params = " ".join(f"{k[2:]}={v}" for k, v in row.items() if k.startswith("p_"))
            click.echo(f"{row['run_id']}  {row['status']:<7}  {params}")
        click.echo(f"{s.n_points} points, {s.n_skipped} already done (dry run: nothing was run or written)")
        return
    click.echo(f"results in {s.out_dir}")
    click.echo(f"{s.n_points} points: {s.n_done} done, {s.n_skipped} skipped (already done), {s.n_failed} failed")
    if s.plot_error:
        click.echo(f"warning: plot() failed: {s.plot_error}", err=True)
    if s.report is not None:
        click.echo(f"report: {s.report}")
    if s.n_failed:
        click.echo(f"error: {s.n_failed} of {s.n_points} points failed; their errors are in {s.out_dir / 'runs.csv'} "
                   f"and {s.out_dir / 'errors'} (rerun with --out {s.out_dir} to retry them)", err=True)
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--module", "module_path", default=None, metavar="PACKAGE.MODULE",
              help="The experiment module to draw with, for an experiment that is not registered "
                   "(a module named in the folder's config.json is never imported on its own).")
def report(directory, module_path) -> None:
    """Rebuild the figures and report of a results folder (or of `pchw demo`'s) from runs.csv and config.json."""
    from experiments.framework import rebuild

    md_path, html_path = rebuild(directory, module_path=module_path)
    click.echo(f"report: {md_path}")
    click.echo(f"        {html_path}")


if __name__ == "__main__":
    main()
