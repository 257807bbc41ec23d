"""Datasets by name: ``mnist`` (bundled), ``fashion-mnist``, ``digits`` and ``blobs``.

>>> data = load("mnist")
>>> data
Dataset('mnist', train=55000, val=5000, test=10000, in_shape=(1, 28, 28), n_classes=10)
>>> load("blobs:classes=4,features=8").in_shape
(8,)

Each dataset is read once per process and kept (treat its tensors as read-only). The
validation split is always carved from the official training set in a fixed way, stated in
``Dataset.split_note``; no random draw is involved, so every run sees the same split.
"""

from __future__ import annotations

import inspect
import os
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any

import torch

from initlab.data import user
from initlab.data.idx import read_idx
from initlab.data.sources import IdxFile, find_in, locate
from initlab.data.tensors import Dataset, Split
from initlab.errors import DataError, InitSpecError
from initlab.registry import Registry
from initlab.specs import format_spec

# The four IDX files of MNIST and of Fashion-MNIST: the same names and shapes.
_IDX_LAYOUT = (
    ("train-images-idx3-ubyte", (60000, 28, 28)),
    ("train-labels-idx1-ubyte", (60000,)),
    ("t10k-images-idx3-ubyte", (10000, 28, 28)),
    ("t10k-labels-idx1-ubyte", (10000,)),
)


def _idx_files(*sha256: str) -> list[IdxFile]:
    """The four IDX files with their sha256 (of the UNCOMPRESSED files: gzip bytes differ
    between hosts), in the order of ``_IDX_LAYOUT``."""
    return [IdxFile(name, digest, shape) for (name, shape), digest in zip(_IDX_LAYOUT, sha256)]


MNIST_FILES = _idx_files(
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
)
FASHION_FILES = _idx_files(
    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
)
FASHION_URLS = [
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]
FASHION_HOW_TO = (
    "Get it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the four IDX "
    ".gz files from https://github.com/zalandoresearch/fashion-mnist in a folder and pass "
    "--data-dir DIR (or set INITLAB_DATA=DIR)."
)
IDX_VAL_SIZE = 5000  # the last 5,000 images of the official training set

_CACHE: dict[tuple, Dataset] = {}


def _spelling(name: str) -> str:
    return name.lower().replace("_", "-")  # "Fashion_MNIST" is "fashion-mnist"


# name -> loader(data_dir=, download=, **options); the options are the loader's keyword-only
# parameters, with their defaults
DATASETS = Registry("dataset", normalize=_spelling)
_LOADERS = DATASETS  # the former name of the table


def names(pattern: str | None = None) -> list[str]:
    """Dataset names :func:`load` knows, sorted; a glob ``pattern`` keeps those it matches.

    >>> names("*mnist")
    ['fashion-mnist', 'mnist']
    """
    return DATASETS.names(pattern)


def default_options(name: str) -> dict[str, Any]:
    """The options of dataset ``name`` (or a spelling of it) and their defaults.

    >>> default_options("blobs")
    {'n': 3000, 'features': 2, 'classes': 3, 'std': 1.0, 'seed': 0}
    """
    parameters = inspect.signature(DATASETS.entry(name)).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}


def canonical_name(spec: str) -> str:
    """The canonical spec of a dataset name (options equal to their defaults dropped)."""
    name, values = _parse(spec)
    defaults = default_options(name)
    changed = {k: v for k, v in values.items() if v != defaults[k]}
    return format_spec(name, changed)


def _parse(spec: str) -> tuple[str, dict[str, Any]]:
    name, given = DATASETS.parse(spec)
    defaults = default_options(name)
    DATASETS.check_options(name, given, defaults)
    for key, value in given.items():
        want = type(defaults[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not want:
            raise InitSpecError(
                f"Option {key}={value!r} of dataset '{name}' must be a {want.__name__}."
            )
    return name, {**defaults, **given}


def load(
    name: str, data_dir: str | os.PathLike | None = None, *, download: bool | None = None
) -> Dataset:
    """Load dataset ``name`` (a spec such as ``"mnist"`` or ``"blobs:classes=3"``) once.

    ``data_dir`` is searched first for file-based datasets. ``download=False`` (or the
    environment variable ``INITLAB_OFFLINE=1``) forbids downloads. Missing, truncated or
    corrupted files raise a one-line :class:`~initlab.errors.DataError` naming the file.
    """
    given = user.registered(name)  # your own data, registered by compare(data=...)
    if given is not None:
        return given
    key_name, options = _parse(name)
    key = (key_name, tuple(sorted(options.items())), str(data_dir) if data_dir else None)
    if key not in _CACHE:
        _CACHE[key] = DATASETS[key_name](data_dir=data_dir, download=download, **options)
    return _CACHE[key]


def _idx_dataset(name: str, paths: dict[str, Path], files: list[IdxFile], source: str) -> Dataset:
    arrays = {
        f.stem: read_idx(
            paths[f.stem],
            sha256=f.sha256,
            expected_shape=f.shape,
            value_range=(0, 9) if "labels" in f.stem else None,
        )
        for f in files
    }
    x_train, y_train = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    x_test, y_test = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    x_train, x_test = x_train.unsqueeze(1), x_test.unsqueeze(1)  # (N, 1, 28, 28)
    y_train, y_test = y_train.long(), y_test.long()
    cut = len(y_train) - IDX_VAL_SIZE
    return Dataset(
        name=name,
        train=Split(x_train[:cut], y_train[:cut], 255.0),
        val=Split(x_train[cut:], y_train[cut:], 255.0),
        test=Split(x_test, y_test, 255.0),
        n_classes=10,
        in_shape=(1, 28, 28),
        source=source,
        split_note=f"validation = the last {IDX_VAL_SIZE:,} images of the official training set",
    )


def bundled_mnist_dir() -> Path:
    """The folder of the MNIST files shipped inside the package."""
    return Path(str(package_files("initlab.data") / "mnist"))


@DATASETS.register("mnist")
def _mnist(data_dir=None, download=None) -> Dataset:
    # The bundled copy always exists; an explicit data_dir holding MNIST takes precedence.
    paths = None
    if data_dir is not None:
        paths = find_in(Path(data_dir) / "mnist", MNIST_FILES) or find_in(
            Path(data_dir), MNIST_FILES
        )
    folder = bundled_mnist_dir()
    if paths is None:
        paths = find_in(folder, MNIST_FILES)
    if paths is None:
        raise DataError(f"{folder}: the bundled MNIST files are missing; reinstall initlab.")
    return _idx_dataset("mnist", paths, MNIST_FILES, str(next(iter(paths.values())).parent))


@DATASETS.register("fashion-mnist")
def _fashion(data_dir=None, download=None) -> Dataset:
    paths = locate(
        "fashion-mnist", FASHION_FILES, data_dir=data_dir, urls=FASHION_URLS,
        how_to_get=FASHION_HOW_TO, download=download,
    )  # fmt: skip
    return _idx_dataset(
        "fashion-mnist", paths, FASHION_FILES, str(next(iter(paths.values())).parent)
    )


@DATASETS.register("digits")
def _digits(data_dir=None, download=None) -> Dataset:
    try:
        from sklearn.datasets import load_digits  # lazy: optional dependency (initlab[digits])
    except ImportError:
        raise DataError(
            "Dataset 'digits' needs scikit-learn: pip install 'initlab[digits]'."
        ) from None
    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).to(torch.uint8).unsqueeze(1)
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    # A fixed shuffle (the file is sorted in blocks by writer), then 1197 / 300 / 300.
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return Dataset(
        name="digits",
        train=Split(x[:1197], y[:1197], 16.0),
        val=Split(x[1197:1497], y[1197:1497], 16.0),
        test=Split(x[1497:], y[1497:], 16.0),
        n_classes=10,
        in_shape=(1, 8, 8),
        source="sklearn.datasets.load_digits",
        split_note="fixed permutation (generator seeded 0): train 1197, validation 300, test 300",
    )


@DATASETS.register("blobs")
def _blobs(
    data_dir=None, download=None, *, n=3000, features=2, classes=3, std=1.0, seed=0
) -> Dataset:
    if n < 10 or features < 1 or classes < 2 or std <= 0:
        raise InitSpecError(
            f"Bad blobs options n={n}, features={features}, classes={classes}, std={std}: "
            "need n >= 10, features >= 1, classes >= 2, std > 0."
        )
    g = torch.Generator().manual_seed(seed)
    # Centres uniform in [-10, 10]^features, as scikit-learn's make_blobs draws them.
    centres = torch.rand(classes, features, generator=g) * 20 - 10
    y = torch.arange(n) % classes
    y = y[torch.randperm(n, generator=g)]
    x = centres[y] + std * torch.randn(n, features, generator=g)
    a, b = int(n * 0.6), int(n * 0.8)
    spec = canonical_name(
        format_spec("blobs", dict(n=n, features=features, classes=classes, std=std, seed=seed))
    )
    return Dataset(
        name=spec,
        train=Split(x[:a], y[:a]),
        val=Split(x[a:b], y[a:b]),
        test=Split(x[b:], y[b:]),
        n_classes=classes,
        in_shape=(features,),
        source=f"synthetic Gaussian blobs (seed {seed})",
        split_note="60% train, 20% validation, 20% test of one seeded draw",
    )
