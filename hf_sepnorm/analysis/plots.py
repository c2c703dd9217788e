"""PNG charts of [CLS] embeddings: singular value spectra of several arms, and 2-D PCA projections by class.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot): nothing is opened on screen, no global figure
state is left behind, and the files are exactly `figsize * dpi` pixels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .metrics import effective_rank, normalized_singular_values, singular_value_spectrum

PathLike = str | os.PathLike


def _save(figure: Figure, path: PathLike, dpi: int) -> PathLike:
    FigureCanvasAgg(figure)  # attaches itself to the figure: PNG rendering by Agg, whatever the default backend
    figure.savefig(path, dpi=dpi, format="png")
    return path


# (linestyle, marker) per curve of a spectrum chart, in plotting order
SPECTRUM_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"), ((0, (1, 3)), "x"))


def plot_spectra(
    spectra: Mapping[str, torch.Tensor],
    path: PathLike,
    title: str = "Singular value spectrum of the [CLS] embeddings",
    *,
    figsize: tuple[float, float] = (6.4, 4.8),
    dpi: int = 100,
) -> PathLike:
    """Plot the normalized singular values s_i / sum s of several arms (e.g. "ShareNorm", "SepNorm") on one chart:
    index on x, log scale on y, each arm's effective rank in the legend. A value of `spectra` is a 1-D tensor of
    singular values or (N, d) embeddings (their centered spectrum is used). A flatter curve is a less collapsed
    embedding. Returns `path`."""
    figure = Figure(figsize=figsize, layout="constrained")
    axes = figure.add_subplot()
    for index, (name, spectrum) in enumerate(spectra.items()):
        singular_values = spectrum if spectrum.ndim == 1 else singular_value_spectrum(spectrum)
        probabilities = normalized_singular_values(singular_values)
        count = probabilities.numel()
        label = f"{name} (effective rank {effective_rank(singular_values):.1f} / {count})"
        # arms can coincide (e.g. a norm only [CLS] reads): each later curve is thinner, dashed differently and
        # marked by a smaller hollow symbol, so that one drawn over another leaves the other visible
        style = SPECTRUM_STYLES[index % len(SPECTRUM_STYLES)]
        axes.plot(torch.arange(1, count + 1).numpy(), probabilities.numpy(), label=label, linestyle=style[0],
                  marker=style[1], markersize=max(3.0, 9.0 - 1.5 * index), markerfacecolor="none",
                  linewidth=max(0.8, 2.6 - 0.5 * index))  # fmt: skip
    axes.set_yscale("log")
    axes.set_xlabel("singular value index i")
    axes.set_ylabel("normalized singular value  s_i / Σ s")
    axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend()
    return _save(figure, path, dpi)


def _pca_2d(embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The embeddings projected on their first two principal components, and each component's share of variance."""
    centered = embeddings.detach().to(torch.float64)
    centered = centered - centered.mean(dim=0, keepdim=True)
    _, singular_values, components = torch.linalg.svd(centered, full_matrices=False)
    variance = singular_values.square()
    return centered @ components[:2].T, variance[:2] / variance.sum()


def _class_colors(labels: Sequence[torch.Tensor]) -> dict[int, tuple]:
    """One colour per class present in any of `labels`, the same in every panel: tab10 or tab20 where they suffice,
    evenly spaced turbo colours beyond 20 classes."""
    classes = torch.cat([label.detach().cpu().flatten() for label in labels]).unique().tolist()
    if len(classes) <= 20:
        palette = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        return {label: palette(index) for index, label in enumerate(classes)}
    palette = matplotlib.colormaps["turbo"]
    return {label: palette(index / (len(classes) - 1)) for index, label in enumerate(classes)}


def _draw_projection(axes: Axes, embeddings: torch.Tensor, labels: torch.Tensor, title: str, colors: dict) -> None:
    projected, variance_share = _pca_2d(embeddings)
    labels = labels.detach().cpu()
    for label, color in colors.items():
        points = projected[labels == label]
        axes.scatter(points[:, 0].numpy(), points[:, 1].numpy(), s=8, alpha=0.7, color=color)
    axes.set_xlabel(f"PC 1 ({100 * variance_share[0]:.1f} % of variance)")
    axes.set_ylabel(f"PC 2 ({100 * variance_share[1]:.1f} % of variance)")
    axes.set_title(title)


def _add_class_legend(figure: Figure, colors: dict, class_names: Sequence[str] | None) -> None:
    """One legend for all panels, outside them on the right, so that it hides no point."""
    handles = [
        Line2D([], [], marker="o", linestyle="", color=color, label=class_names[label] if class_names else str(label))
        for label, color in colors.items()
    ]
    figure.legend(handles=handles, title="class", loc="outside right upper", fontsize="small")


def plot_embedding_projection(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    path: PathLike,
    title: str = "[CLS] embeddings, PCA projection",
    *,
    class_names: Sequence[str] | None = None,
    figsize: tuple[float, float] = (6.4, 5.4),
    dpi: int = 100,
) -> PathLike:
    """Scatter the (N, d) embeddings projected on their first two principal components, coloured by class (integer
    `labels`, named by `class_names[label]` in the legend when given); the legend sits right of the chart.
    Returns `path`."""
    figure = Figure(figsize=figsize, layout="constrained")
    colors = _class_colors([labels])
    _draw_projection(figure.add_subplot(), embeddings, labels, title, colors)
    _add_class_legend(figure, colors, class_names)
    return _save(figure, path, dpi)


def plot_projections(
    arms: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    path: PathLike,
    title: str = "[CLS] embeddings, PCA projection",
    *,
    class_names: Sequence[str] | None = None,
    panel_size: tuple[float, float] = (5.0, 5.0),
    dpi: int = 100,
) -> PathLike:
    """Side-by-side PCA projections of several arms, `{name: (embeddings, labels)}`, one panel per arm (each with its
    own principal components) with one class legend and colour per class across panels, under a common `title`.
    Returns `path`."""
    figure = Figure(figsize=(panel_size[0] * len(arms), panel_size[1]), layout="constrained")
    panels = figure.subplots(1, len(arms), squeeze=False)[0]
    colors = _class_colors([labels for _, labels in arms.values()])
    for axes, (name, (embeddings, labels)) in zip(panels, arms.items()):
        _draw_projection(axes, embeddings, labels, name, colors)
    _add_class_legend(figure, colors, class_names)
    figure.suptitle(title)
    return _save(figure, path, dpi)
