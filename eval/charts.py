"""PNG charts for run folders (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def recall_curve_chart(folder: Path, curve: dict[str, dict[int, float]], name: str = "recall_at_k.png",
                       ylabel: str = "recall@k") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for system, points in curve.items():
        ks = sorted(int(k) for k in points)
        ax.plot(ks, [points[k] if k in points else points[str(k)] for k in ks], marker="o", label=system)
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(folder) / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_chart(folder: Path, seconds: dict[str, list[float]], name: str = "latency.png") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    systems = [s for s, v in seconds.items() if v]
    ax.boxplot([[x * 1000 for x in seconds[s]] for s in systems], showfliers=False)
    ax.set_xticks(range(1, len(systems) + 1), systems)
    ax.set_ylabel("ms per query")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(folder) / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
