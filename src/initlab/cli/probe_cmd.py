"""``initlab histogram`` (the classic per-layer activation figure) and ``initlab probe``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from initlab.errors import ConfigError, InitSpecError
from initlab.specs import split_specs


def _console():
    console = Console()
    # Piped or captured output has no terminal width: do not squeeze the table to 80 columns.
    return console if console.is_terminal else Console(width=120)


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.split(","))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ConfigError(
            f"Bad --input-shape {text!r}: give positive integers separated by commas, "
            "e.g. 1,28,28 (the batch dimension is --batch)."
        )
    return dims


@click.command("histogram")
@click.option(
    "--activation",
    "--activations",
    "activations",
    default="sigmoid",
    show_default=True,
    help="Activation(s), comma-separated: a grid figure.",
)
@click.option(
    "--init",
    "--inits",
    "inits",
    default="normal:std=1",
    show_default=True,
    help="Init spec(s), comma-separated, e.g. 'normal:std=0.01,lecun_normal'.",
)
@click.option("--layers", default=5, show_default=True, type=int)
@click.option("--width", default=100, show_default=True, type=int)
@click.option("--samples", default=1000, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--bins", default=30, show_default=True, type=int)
@click.option("--bias/--no-bias", default=False, show_default=True)
@click.option(
    "--out",
    "out_dir",
    default="runs/histogram",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for histogram.png and stats.json.",
)
def histogram(activations, inits, layers, width, samples, seed, bins, bias, out_dir) -> None:
    """Per-layer activation histograms of a Linear + activation stack fed N(0, 1) inputs."""
    # lazy: torch and matplotlib, kept out of CLI startup (initlab --help)
    from initlab.probe.experiment import histogram_grid
    from initlab.report.histograms import write_histogram_png

    runs = histogram_grid(
        split_specs(inits), split_specs(activations), layers=layers, width=width,
        samples=samples, seed=seed, bins=bins, bias=bias,
    )  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_histogram_png(runs, out / "histogram.png")
    stats = {"runs": [r.to_dict() for r in runs]}
    (out / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")
    console = _console()
    for run in runs:
        acts = run.activation_layers()
        stds = ", ".join(f"{x.std:.3g}" for x in acts)
        console.print(f"[bold]{escape(run.activation)}[/], init [bold]{escape(run.init)}[/]: "
                      f"activation std by layer {stds}")  # fmt: skip
        if not run.probe.findings:
            console.print("  [green]no warning[/]")
        for f in run.probe.findings:
            console.print(f"  [yellow]{escape(f.kind)}[/]: {escape(f.message)} "
                          f"[dim]Try:[/] {escape(f.fix)}")  # fmt: skip
    console.print(f"wrote {escape(str(out / 'histogram.png'))} and stats.json")


def probe_inputs(
    source: str, batch: int, shape: tuple[int, ...], seed: int, vocab: int | None = None
):
    """The batch the probe command feeds: N(0, 1) noise, or with ``vocab`` uniform token ids
    in ``[0, vocab)`` (int64, for language models). A dataset source (``--dataset mnist``)
    plugs in here and returns (inputs, targets)."""
    # lazy: torch, kept out of CLI startup (initlab --help)
    import torch

    from initlab.probe.experiment import input_seed

    if source != "normal":
        raise InitSpecError(f"Unknown input source '{source}'. Allowed: normal.")
    g = torch.Generator().manual_seed(input_seed(seed))
    if vocab is not None:
        return torch.randint(0, vocab, (batch, *shape), generator=g), None
    return torch.randn(batch, *shape, generator=g), None


def model_vocab(model) -> int | None:
    """The vocabulary of a Hugging Face model whose main input is token ids, else None: the
    command then feeds token ids without being told ``--vocab``."""
    config = getattr(model, "config", None)
    if getattr(model, "main_input_name", None) != "input_ids" or config is None:
        return None
    vocab = getattr(config, "vocab_size", None)
    return vocab if isinstance(vocab, int) and vocab > 0 else None


@click.command("probe")
@click.option(
    "--model",
    "model_spec",
    required=True,
    help="A factory: package.module:factory[:key=value,...] returning an nn.Module.",
)
@click.option(
    "--input-shape",
    required=True,
    help="One example's shape, e.g. 1,28,28; for token ids the sequence length, e.g. 128.",
)
@click.option("--batch", default=256, show_default=True, type=int)
@click.option(
    "--vocab",
    default=None,
    type=int,
    help="Feed random token ids in [0, VOCAB) of shape [batch, *input-shape] instead of "
    "N(0, 1) noise. Default: config.vocab_size for a Hugging Face model whose main input "
    "is input_ids (GPT-2, Llama, BERT...), else noise.",
)
@click.option(
    "--loss",
    default="none",
    show_default=True,
    type=click.Choice(["none", "mean_square"]),
    help="Also backpropagate a loss, for gradient stats: mean_square is the mean of squares "
    "of the output (an HF model's logits or last_hidden_state).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--init", "init", default=None, help="Re-initialize with this spec first.")
@click.option("--bins", default=30, show_default=True, type=int)
@click.option(
    "--json",
    "json_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also write the probe record as JSON here.",
)
@click.option(
    "--jacobian",
    is_flag=True,
    help="Also measure the squared singular values of the input-output Jacobian at 4 inputs "
    "(exact for small nets, randomized for big ones) and the mean-field mean chi_1^L.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
def probe(model_spec, input_shape, batch, vocab, loss, seed, init, bins, json_path,
          jacobian, device) -> None:  # fmt: skip
    """Probe a model of your own: per-layer table, predicted variance and diagnosis.

    A factory returning a Hugging Face language model (e.g. GPT2LMHeadModel built from a
    config) is fed token ids of length --input-shape: `initlab probe --model
    mypkg.lm:make_gpt2 --input-shape 64 --batch 8 --loss mean_square`.
    """
    # lazy: torch, kept out of CLI startup (initlab --help)
    import torch

    from initlab.initializers import init_
    from initlab.models.factory import build_model
    from initlab.probe.probe import probe as run_probe
    from initlab.train.device import check_device

    device = check_device(device)
    shape = _shape(input_shape)
    if batch < 1:
        raise ConfigError(f"--batch must be a positive integer, got {batch}.")
    if vocab is not None and vocab < 1:
        raise ConfigError(f"--vocab must be a positive integer, got {vocab}.")
    model = build_model(model_spec)
    if init is not None:
        init_(model, init, generator=torch.Generator().manual_seed(seed))
    vocab = vocab if vocab is not None else model_vocab(model)
    inputs, targets = probe_inputs("normal", batch, shape, seed, vocab)
    # the draws above are on the CPU (the same numbers on every device); then both move
    model, inputs = model.to(device), inputs.to(device)
    try:
        report = run_probe(model, inputs, bins=bins, loss_fn=None if loss == "none" else loss,
                           jacobian=jacobian)  # fmt: skip
    except (RuntimeError, IndexError) as e:  # a bad shape; IndexError: an id >= vocab
        first = str(e).splitlines()[0]
        what = f"token ids in [0, {vocab}) of shape" if vocab is not None else "inputs of shape"
        raise ConfigError(f"The model failed on {what} {[batch, *shape]}: {first}") from e
    _console().print(report)
    spectrum = getattr(report, "jacobian", None)
    if spectrum is not None:
        mf = spectrum.predicted_mean
        pred = "" if mf is None else f" (mean field {mf:.4g})"
        cond = "" if spectrum.condition is None else f", condition {spectrum.condition:.3g}"
        _console().print(
            f"Jacobian ({spectrum.method}, {spectrum.inputs} inputs, J {spectrum.shape[0]} x "
            f"{spectrum.shape[1]}): squared singular values mean {spectrum.mean:.4g}{pred}, "
            f"variance {spectrum.variance:.4g}, max {spectrum.max:.4g}{cond}"
        )
    if json_path:
        data = report.to_dict()
        if spectrum is not None:
            data["jacobian"] = spectrum.to_dict()
        Path(json_path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


COMMANDS = [histogram, probe]
