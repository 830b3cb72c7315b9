"""The ``pchw`` command line: parses options and dispatches; no maths lives here."""

from __future__ import annotations

import sys

import click

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class _OneLineErrors(click.Group):
    """Print every user error as one ``error: ...`` line (exit 2) instead of usage blocks."""

    def main(self, args=None, prog_name=None, **kwargs):  # noqa: D401 - click's signature
        from pchw.runlog import DivergenceError, Interrupted

        try:
            return super().main(args=args, prog_name=prog_name, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" (see 'pchw {exc.ctx.command_path.split(' ', 1)[-1]} --help')" if exc.ctx else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except Interrupted as exc:
            click.echo(f"\n{exc}", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except DivergenceError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except _user_errors() as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)


def _user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean 'bad input or missing data', reported as one line."""
    from pchw.data import DataError
    from pchw.runlog import RunError
    from pchw.spec import SpecError

    errors: list[type[Exception]] = [DataError, RunError, SpecError]
    try:
        from models.training import ConfigError

        errors.append(ConfigError)
    except ImportError:  # torch missing: the train command reports that itself
        pass
    return tuple(errors)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """pchw — predictive-coding hardware co-design: train μPC, simulate circuits, price joules."""


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
@click.option("--n-steps", type=int, default=None, help="Inference steps T per batch (default: H).")
@click.option("--activity-lr", type=float, default=0.5, show_default=True,
              help="β: step of gradient descent on the batch-mean free energy.")
@click.option("--param-lr", type=float, default=0.1, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Samples per batch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of weight init and data order.")
@click.option("--test-every", type=int, default=100, show_default=True,
              help="Evaluate test accuracy and checkpoint every this many iterations.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Floating-point precision.")
@click.option("--n-train", type=int, default=None, help="Use only the first N training samples.")
@click.option("--n-test", type=int, default=None, help="Use only the first N test samples.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder for config.json, history.csv and checkpoint.pt.")
@click.option("--resume", is_flag=True, help="Continue the run saved in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(model, dataset, depth, width, act, no_skip, iters, epochs, n_steps, activity_lr, param_lr,
          batch_size, seed, test_every, device, dtype, n_train, n_test, out_dir, resume, quiet) -> None:
    """Train a μPC / SP / backprop network and print its test accuracy."""
    from models.training import TrainConfig
    from models.training import train as run_training

    config = TrainConfig(
        model=model, dataset=dataset, depth=depth, width=width, act=act, skip=not no_skip,
        iters=iters, epochs=epochs, n_steps=n_steps, activity_lr=activity_lr, param_lr=param_lr,
        batch_size=batch_size, seed=seed, test_every=test_every, device=device, dtype=dtype,
        n_train=n_train, n_test=n_test,
    )
    result = run_training(config, out_dir=out_dir, resume=resume, show_progress=not quiet)
    energy = f", measured GPU energy {result.gpu_energy_j:.1f} J" if result.gpu_energy_j is not None else ""
    click.echo(
        f"{model} depth={depth} width={width} {dataset}: test accuracy {100 * result.test_acc:.2f}% "
        f"after {result.iterations} iterations ({result.wall_s:.1f} s{energy})"
    )
    if result.out_dir is not None:
        click.echo(f"run saved to {result.out_dir}")


# ---------------------------------------------------------------------------------------- demo
@main.command()
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist", "synthetic"]), default="mnist",
              show_default=True, help="Data set of the demo.")
@click.option("--depth", type=int, default=9, show_default=True, help="Weight matrices L of both networks.")
@click.option("--width", type=int, default=128, show_default=True, help="Hidden width N.")
@click.option("--epochs", type=float, default=1.0, show_default=True, help="Epochs to train each network.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/demo", show_default=True,
              help="Folder for the two run folders (replaced if it holds an earlier demo).")
def demo(dataset, depth, width, epochs, out_dir) -> None:
    """Train a small μPC network and its backprop (Depth-μP) twin; print both accuracies."""
    import shutil
    from pathlib import Path

    from models.training import TrainConfig
    from models.training import train as run_training

    out = Path(out_dir)
    results = {}
    for model in ("mupc", "bp"):
        run = out / model
        if (run / "checkpoint.pt").exists():
            shutil.rmtree(run)
        config = TrainConfig(model=model, dataset=dataset, depth=depth, width=width, epochs=epochs,
                             test_every=200)
        results[model] = run_training(config, out_dir=run, show_progress=True)
    click.echo(f"\n{dataset}, depth {depth}, width {width}, {epochs:g} epoch(s), batch 64, Adam 0.1:")
    for model, label in (("mupc", "μPC (T = H, β = 0.5)"), ("bp", "backprop (Depth-μP)")):
        r = results[model]
        click.echo(f"  {label:<22} test accuracy {100 * r.test_acc:6.2f}%   {r.wall_s:6.1f} s   -> {r.out_dir}")


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


if __name__ == "__main__":
    main()
