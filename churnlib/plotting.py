"""The house plot style and figure saving: one look for every notebook and report."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from churnlib import paths

__all__ = ["CLASS_PALETTE", "savefig", "set_house_style"]

#: Colours for the two classes, used everywhere a plot splits by label.
CLASS_PALETTE = {"retained": "#4C72B0", "churned": "#DD8452"}


def set_house_style() -> None:
    """Apply the churnlib style (seaborn whitegrid, readable sizes, no top/right spines)."""
    sns.set_theme(style="whitegrid", context="notebook", palette="deep")
    plt.rcParams.update({
        "figure.figsize": (8, 4.5),
        "figure.dpi": 100,
        "axes.titlesize": 12,
        "axes.titleweight": "bold",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "savefig.bbox": "tight",
    })


def savefig(fig: plt.Figure, name: str, output_dir: str | os.PathLike | None = None, dpi: int = 110) -> Path:
    """Save ``fig`` as ``figures/<name>.png`` under the output root and return the path."""
    out = paths.figures_dir(output_dir) / f"{name}.png"
    fig.savefig(out, dpi=dpi)
    return out
