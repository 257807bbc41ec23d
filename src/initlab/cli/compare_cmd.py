"""``initlab compare``: train inits x seeds together on real data and print the table."""

from __future__ import annotations

import click

from initlab.cli import progress  # the module: tests replace progress.progress_bar
from initlab.cli.options import DATA_DIR_HELP, GroupedCommand, option
from initlab.cli.tables import print_comparison
from initlab.errors import ConfigError, InitlabError

EXPERIMENT, TRAINING, RUN = "Experiment", "Training", "Run"
CONTROLS = "Schedule, regularization, early stopping"


def experiment_options(f):
    """The options every training command shares (compare; presets and sweeps reuse them)."""
    decorators = [
        option("--dataset", group=EXPERIMENT, help="mnist (bundled), fashion-mnist, digits, blobs."),
        option("--data-dir", type=click.Path(file_okay=False), group=EXPERIMENT,
               help=DATA_DIR_HELP),
        option("--data", "data_function", group=EXPERIMENT,
               help="Your own data: package.module:function returning (x_train, y_train, "
                    "x_test, y_test) or (train, test) torch Datasets."),
        option("--arch", "--model", "arch", group=EXPERIMENT,
               help="Model spec: mlp:100x4, mlp:256,256, cnn:32,64 or package.module:factory."),
        option("--activation", "--activations", "activation", group=EXPERIMENT,
               help="Activation after each hidden layer: relu, tanh, sigmoid, gelu, ..."),
        option("--inits", "--init", "inits", multiple=True, group=EXPERIMENT,
               help="Initializer specs, comma-separated or repeated: "
                    "normal:std=0.01,lecun_normal,he_normal."),
        option("--bias", group=EXPERIMENT, help="Initializer spec for biases (default zeros)."),
        option("--seeds", type=int, group=EXPERIMENT, help="Seeds per init (default 3)."),
        option("--optimizer", group=TRAINING, help="sgd, momentum, adam:betas=0.9,0.999, ..."),
        option("--lr", type=float, group=TRAINING, help="Learning rate (default 0.01)."),
        option("--batch-size", type=int, group=TRAINING, help="Batch size (default 128)."),
        option("--steps", type=int, group=TRAINING, help="Optimizer steps per model."),
        option("--eval-every", type=int, group=TRAINING,
               help="Evaluate validation and test every N steps."),
        option("--target-loss", type=float, group=TRAINING,
               help="Train loss for the 'steps to target' column (default 0.5)."),
        option("--schedule", group=CONTROLS,
               help="LR schedule: constant, step:step_size=1000,gamma=0.1, exponential, "
                    "inverse_time, cosine:decay_steps=2000, cosine_restarts:first_decay_steps=500,"
                    " plateau:patience=3; warmup_steps=N on any (linear warmup first)."),
        option("--l1", type=float, group=CONTROLS, help="L1 penalty on weights: + l1 * sum|W|."),
        option("--l2", type=float, group=CONTROLS,
               help="L2 penalty on weights (coupled, in the loss): + l2 * sum W^2."),
        option("--weight-decay", type=float, group=CONTROLS,
               help="Decoupled weight decay (AdamW-style, any optimizer): W *= 1 - lr * wd."),
        option("--activity-l1", type=float, group=CONTROLS,
               help="L1 activity penalty: + activity_l1 * batch mean of sum|h|."),
        option("--activity-l2", type=float, group=CONTROLS,
               help="L2 activity penalty: + activity_l2 * batch mean of sum h^2."),
        option("--activity-layers", group=CONTROLS,
               help="Hidden activations (1-based, comma-separated) the activity penalty acts on."),
        option("--dropout", group=CONTROLS,
               help="Dropout after each hidden activation: one rate or one per layer (0.2,0.5)."),
        option("--batchnorm/--no-batchnorm", default=None, group=CONTROLS,
               help="Batch norm before each hidden activation."),
        option("--early-stopping", group=CONTROLS,
               help="Stop each model on its own: on, or options such as "
                    "monitor=val_loss,patience=5,min_delta=0,mode=auto,restore_best=true."),
        option("--config", "config_file", type=click.Path(dir_okay=False), group=RUN,
               help="TOML file with the same keys as these options; options given here win."),
        option("--out", type=click.Path(file_okay=False), group=RUN,
               help="Run folder (default runs/compare-HASH). Rerunning reuses finished runs."),
        option("--name", group=RUN, help="A label for the experiment, shown in the report."),
        option("--device", group=RUN, help="cpu (default), cuda or mps."),
        option("--precision", group=RUN,
               help="fp32 (default) or bf16: bf16 autocast of matmuls, fp32 weights and loss "
                    "(also Lightning's 32-true, bf16-mixed)."),
        option("--threads", type=int, group=RUN, help="torch threads (default: all cores)."),
        option("--no-report", is_flag=True, group=RUN, help="Do not write report.html."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def build_config(config_file, no_report, inits, **options):
    """Options -> a validated CompareConfig (file values first, explicit options win)."""
    # lazy: pydantic and torch, kept out of CLI startup (initlab --help)
    from initlab.experiments.config import CompareConfig, load_toml, make_config

    options["inits"] = list(inits) or None  # split and checked once, by CompareConfig
    data_function = options.pop("data_function", None)
    if data_function:
        if options.get("dataset"):
            raise ConfigError("Give --dataset or --data, not both.")
        options["dataset"] = user_dataset(data_function)
    options["dropout"] = numbers(options.get("dropout"), float, "--dropout")
    options["activity_layers"] = numbers(options.get("activity_layers"), int, "--activity-layers",
                                         always_list=True)  # fmt: skip
    if config_file:
        return load_toml(config_file, CompareConfig, **options)
    return make_config(CompareConfig, **options)


def user_dataset(function: str) -> str:
    """Call ``package.module:function`` (no arguments), register what it returns as a
    dataset of this process and return its name."""
    # lazy: torch, kept out of CLI startup (initlab --help)
    from initlab.data import user
    from initlab.models.factory import load_factory

    try:
        data = load_factory(function)()
    except InitlabError:
        raise
    except Exception as e:  # noqa: BLE001  the user's function failed: say so in one line
        raise ConfigError(
            f"--data {function}: calling it failed ({type(e).__name__}: {e})."
        ) from None
    return user.register(user.as_dataset(data, name=function))


def numbers(text, kind, name, always_list=False):
    """``"0.5"`` -> 0.5, ``"0.2,0.5"`` -> [0.2, 0.5]; one-line error on anything else."""
    if text is None:
        return None
    try:
        values = [kind(t) for t in str(text).split(",")]
    except ValueError:
        raise ConfigError(
            f"{name} {text!r}: give {kind.__name__} numbers separated by commas, e.g. "
            f"{'1,2' if kind is int else '0.2,0.5'}."
        ) from None
    return values if always_list or len(values) > 1 else values[0]


@click.command("compare", cls=GroupedCommand)
@experiment_options
def compare(config_file, out, no_report, inits, **options) -> None:
    """Train several inits x seeds together on real data; print mean and 95% CI per init.

    \b
    Example (the classic experiment):
      initlab compare --dataset mnist --arch mlp:100x4 --activation relu \\
        --inits normal:std=0.01,lecun_normal,he_normal --seeds 5 --optimizer sgd \\
        --lr 0.01 --batch-size 128 --steps 2000 --out runs/saito
    The same through a file:  initlab compare --config examples/compare.toml
    """
    from initlab.experiments.compare import compare as run_compare  # lazy: torch, as above

    config = build_config(config_file, no_report, inits, **options)
    from initlab.train.precision import bf16_note  # lazy: torch

    slow = bf16_note(config.precision, config.device)
    if slow:  # said before the wait too, not only with the results
        click.echo(f"note: {slow}", err=True)
    with progress.progress_bar(f"training {len(config.inits)} inits x {config.seeds} seeds") as bar:
        result = run_compare(config, out=out, progress=bar, report=not no_report)
    print_comparison(result)


COMMANDS = [compare]
