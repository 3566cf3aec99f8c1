"""Charts for the admin pages as inline SVG, drawn here on the server: no JavaScript, nothing from a CDN."""

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np
from markupsafe import Markup

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 34  # margins around the plot area


def _svg(label: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", css: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{css}">{escape(text)}</text>'


def _legend(colors: Mapping[str, str]) -> list[str]:
    parts, x = [], LEFT
    for name, color in colors.items():
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{color}"/>')
        parts.append(_text(x + 16, 16, name, anchor="start", css="legend"))
        x += 24 + 8 * len(name)
    return parts


def _y_axis(top_value: float, unit: str = "") -> list[str]:
    """Grid lines and labels at 0, the middle and the top of the scale (the middle one only where it differs)."""
    parts, labels = [], []
    for fraction in (0, 0.5, 1):
        label = f"{fraction * top_value:.0f}{unit}"
        if label in labels:
            continue
        labels.append(label)
        y = HEIGHT - BOTTOM - fraction * (HEIGHT - TOP - BOTTOM)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(_text(LEFT - 6, y + 4, label, anchor="end", css="tick"))
    return parts


def stacked_bars(label: str, columns: Sequence[str], series: Mapping[str, Sequence[int]], colors: Mapping[str, str]):
    """One bar per column (e.g. a day), its series stacked bottom up in the order of `series`."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(columns))]
    top = max(max(totals, default=0), 1)
    plot_h, step = HEIGHT - TOP - BOTTOM, (WIDTH - LEFT - RIGHT) / max(len(columns), 1)
    body = [*_legend(colors), *_y_axis(top)]
    for i, column in enumerate(columns):
        x, y = LEFT + i * step, float(HEIGHT - BOTTOM)
        for name, values in series.items():
            h = values[i] / top * plot_h
            if h > 0:
                y -= h
                body.append(
                    f'<rect class="bar" data-series="{escape(name)}" x="{x + 1:.1f}" y="{y:.1f}" '
                    f'width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="{colors[name]}">'
                    f"<title>{escape(column)}: {values[i]} {escape(name)}</title></rect>"
                )
        if i % max(len(columns) // 6, 1) == 0:
            body.append(_text(x + step / 2, HEIGHT - BOTTOM + 16, column, css="tick"))
    return _svg(label, body)


def histograms(
    label: str,
    series: Mapping[str, np.ndarray],
    colors: Mapping[str, str],
    markers: Mapping[str, float],
    x_label: str,
    bins: int = 50,
) -> Markup:
    """Each series as the share of its values per bin (so a small genuine set and a large impostor set compare),
    with vertical lines at the markers (decision points)."""
    values = [v for v in series.values() if len(v)]
    everything = np.concatenate([*values, np.array(list(markers.values()), dtype=np.float64)])
    low, high = (float(everything.min()), float(everything.max())) if len(everything) else (0.0, 1.0)
    pad = (high - low) * 0.05 or 0.1
    edges = np.linspace(low - pad, high + pad, bins + 1)
    shares = {name: np.histogram(v, edges)[0] / max(len(v), 1) for name, v in series.items()}
    top = max((float(s.max()) for s in shares.values() if len(s)), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(value: float) -> float:
        return LEFT + (value - edges[0]) / (edges[-1] - edges[0]) * plot_w

    body = [*_legend(colors), *_y_axis(top * 100, "%")]
    for name, share in shares.items():
        points = [f"{x_of(edges[0]):.1f},{HEIGHT - BOTTOM}"]
        for i, s in enumerate(share):
            y = HEIGHT - BOTTOM - s / top * plot_h
            points += [f"{x_of(edges[i]):.1f},{y:.1f}", f"{x_of(edges[i + 1]):.1f},{y:.1f}"]
        points.append(f"{x_of(edges[-1]):.1f},{HEIGHT - BOTTOM}")
        body.append(
            f'<polygon class="histogram" data-series="{escape(name)}" points="{" ".join(points)}" '
            f'fill="{colors[name]}" fill-opacity="0.45" stroke="{colors[name]}"/>'
        )
    for i, (name, value) in enumerate(markers.items()):
        x = x_of(value)
        body.append(
            f'<line class="marker" data-marker="{escape(name)}" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#1d2330" stroke-dasharray="4 3"/>'
        )
        # Labels beside their line, on the side with room.
        left_side = x > LEFT + 0.75 * plot_w
        body.append(
            _text(
                x - 4 if left_side else x + 4,
                TOP + 12 + 14 * i,
                f"{name} {value:.3f}",
                anchor="end" if left_side else "start",
                css="marker-label",
            )
        )
    for value in np.linspace(edges[0], edges[-1], 6):
        body.append(_text(x_of(value), HEIGHT - BOTTOM + 16, f"{value:.2f}", css="tick"))
    body.append(_text(LEFT + plot_w / 2, HEIGHT - 4, x_label, css="axis"))
    return _svg(label, body)
