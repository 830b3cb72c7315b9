"""The figure of ``pchw validate --figure``: published against pchw's figures, log-log."""

from __future__ import annotations

from pathlib import Path

from pchw.validate import CHIP, ValidationRow


def plot_validation(rows: list[ValidationRow], path: str | Path) -> Path:
    """One panel per metric (TOPS/W, J per inference, pJ per synaptic op), one point per figure: filled
    for the chip's own preset (circles: calibration, squares: cross-checks), hollow diamonds for the
    generic presets that stand for the chip; the diagonal is agreement, the grey wedges the bands (×/÷)
    the panel's rows declare. Written as PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = sorted({r.figure.metric for r in rows}, key=lambda m: m.value)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.4), squeeze=False)
    colours = {chip: f"C{i}" for i, chip in enumerate(sorted({r.chip for r in rows}))}
    for ax, metric in zip(axes[0], metrics):
        mine = [r for r in rows if r.figure.metric is metric]
        lo = min(min(r.figure.value, r.modelled) for r in mine) / 3
        hi = max(max(r.figure.value, r.modelled) for r in mine) * 3
        for shade, band in zip(("0.92", "0.84", "0.76"), sorted({r.band for r in mine}, reverse=True)):
            ax.fill_between([lo, hi], [lo / band, hi / band], [lo * band, hi * band], color=shade)
            ax.annotate(f"×{band:g}", (hi / 1.5 / band, hi / 1.5), fontsize=7, color="0.35", ha="right", va="top")
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=1)
        labelled: set[tuple[str, str]] = set()
        for r in mine:
            if r.claim == CHIP:
                marker = "o" if r.figure.role.value == "calibration" else "s"
                ax.scatter(r.figure.value, r.modelled, color=colours[r.chip], marker=marker, zorder=3, s=40)
            else:
                ax.scatter(r.figure.value, r.modelled, facecolors="none", edgecolors=colours[r.chip], marker="D",
                           zorder=3, s=60)
                if (r.profile, r.chip) not in labelled:  # one label per preset and chip
                    labelled.add((r.profile, r.chip))
                    ax.annotate(r.profile, (r.figure.value, r.modelled), fontsize=6, xytext=(4, -8),
                                textcoords="offset points")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), title=metric.unit,
               xlabel=f"published ({metric.unit})", ylabel=f"pchw estimate ({metric.unit})")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=chip) for chip, c in colours.items()]
    handles += [plt.Line2D([], [], color="k", marker=m, ls="", label=label, markerfacecolor=face)
                for m, label, face in (("o", "chip preset: calibration", "k"), ("s", "chip preset: cross-check", "k"),
                                       ("D", "generic preset (stands for)", "none"))]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=7, frameon=False)
    fig.suptitle("pchw against published silicon (pchw validate)", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
