"""Charts drawn on the server as SVG from numbers: no script and no chart library in the browser.

Each chart is a `Chart`: the SVG (role="img", with a <title> and <desc>) and a text equivalent, a table
of the same figures that the template shows visually hidden or in a <details>. Numbers that place
things (coordinates, widths, the viewBox) are written with `coord()`, never localised; numbers that
people read (labels, the table) are localised with Django's `number_format`.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import count

from django.utils.formats import number_format
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

_ids = count(1)

# Colours with a 4.5:1 contrast against white (bars carry no text; the labels beside them are dark ink).
INK = "#1d2430"
MUTED = "#5b6472"
TRACK = "#e4e7ec"
SERIES = ("#0b6e4f", "#b45309", "#475467")


def coord(value: float) -> str:
    """A number for SVG markup: a dot for decimals whatever the language, at most two decimals."""
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def people(value: float | int | None, decimals: int = 1) -> str:
    """A number for people, in the page's language (a decimal comma in Vietnamese)."""
    if value is None:
        return "—"
    if isinstance(value, int) or float(value).is_integer():
        return number_format(int(value), force_grouping=True)
    return number_format(round(float(value), decimals), decimals, force_grouping=True)


def share(done: float, target: float) -> str:
    return "—" if not target else number_format(100 * done / target, 0) + " %"


@dataclass
class Chart:
    svg: SafeString
    caption: str
    headers: list[str]
    rows: list[list[str]]
    ident: str = field(default_factory=lambda: f"chart-{next(_ids)}")

    def __str__(self):
        return self.svg

    def __html__(self):
        return self.svg


def _svg(width: float, height: float, title: str, desc: str, body: list[str], css: str) -> SafeString:
    ident = f"svg-{next(_ids)}"
    return format_html(
        '<svg class="chart {}" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-t {}-d" '
        'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{}-t">{}</title><desc id="{}-d">{}</desc>{}</svg>',
        css, coord(width), coord(height), ident, ident, ident, title, ident, desc,
        # Every piece of `body` is built here from numbers written by coord() and text passed through escape().
        mark_safe("".join(body)))  # noqa: S308


def _text(x, y, content, *, size=13, anchor="start", weight="normal", fill=INK) -> str:
    return (f'<text x="{coord(x)}" y="{coord(y)}" font-size="{coord(size)}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(content)}</text>')


def _rect(x, y, width, height, fill, *, css="") -> str:
    extra = f' class="{css}"' if css else ""
    return (f'<rect x="{coord(x)}" y="{coord(y)}" width="{coord(max(width, 0))}" height="{coord(height)}" '
            f'fill="{fill}"{extra}/>')


def _wrap(text: str, size: float, width: float) -> list[str]:
    """Words in lines that fit `width` units at `size`, by a generous average glyph width (bold sans-serif),
    so a long lab name is wrapped, never cut by the SVG's edge."""
    per_line = max(int(width / (size * 0.66)), 8)
    lines: list[str] = []
    for word in str(text).split():
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def grouped_bars(title: str, desc: str, categories: list[str], series: list[tuple[str, list[float]]],
                 *, unit: str = "", decimals: int = 1) -> Chart:
    """Horizontal bars, one group per category: the category's name stands above its bars, whole (never cut),
    each bar's figure after it, and a legend on top. Fits a phone: 400 units wide."""
    width, left, right = 400, 4, 70
    span = width - left - right
    peak = max([value for _name, values in series for value in values] + [0]) or 1
    bar, gap = 14, 4
    body, y = [], 4
    for index, (name, _values) in enumerate(series):  # legend
        x = left + index * 190
        body.append(_rect(x, y, 12, 12, SERIES[index % len(SERIES)]))
        body.append(_text(x + 16, y + 11, name, size=12))
    y += 26
    for position, category in enumerate(categories):
        for line in _wrap(category, 13, width - left):
            body.append(_text(left, y + 12, line, size=13, weight="bold"))
            y += 16
        y += 2
        for index, (_name, values) in enumerate(series):
            value = values[position]
            length = span * value / peak
            body.append(_rect(left, y, length, bar, SERIES[index % len(SERIES)]))
            label = people(value, decimals) + (f" {unit}" if unit else "")
            body.append(_text(left + length + 4, y + bar - 3, label, size=12))
            y += bar + gap
        y += 8
    headers = ["", *[name for name, _values in series]]
    rows = [[category, *[people(values[i], decimals) for _name, values in series]]
            for i, category in enumerate(categories)]
    return Chart(_svg(width, y, title, desc, body, "bars"), title, headers, rows)


def progress(title: str, desc: str, rows: list[tuple[str, list[tuple[str, int, int]]]]) -> Chart:
    """Progress against a target: per row (a lab) and per measure, a track for the target and a bar for what is
    done, with "done / target (share)" in words beside. A measure without a target says so."""
    width, left = 400, 4
    body, y = [], 4
    table = []
    for name, measures in rows:
        for line in _wrap(name, 13, width - left):
            body.append(_text(left, y + 12, line, size=13, weight="bold"))
            y += 16
        y += 2
        for label, done, target in measures:
            body.append(_text(left, y + 11, label, size=12, fill=MUTED))
            track_x, track = left + 120, 110
            body.append(_rect(track_x, y, track, 14, TRACK))
            if target:
                body.append(_rect(track_x, y, track * min(done / target, 1), 14, SERIES[0]))
                words = f"{people(done)}/{people(target)} ({share(done, target)})"
            else:
                words = f"{people(done)} · {NO_TARGET}"
            body.append(_text(track_x + track + 4, y + 11, words, size=12))
            y += 20
            table.append([name, str(label), people(done), people(target) if target else "—", share(done, target)])
        y += 8
    return Chart(_svg(width, y, title, desc, body, "progress"), title, [], table)


def daily_columns(title: str, desc: str, month: date, hours_by_day: dict[date, float], *, unit: str) -> Chart:
    """Hours per day over a month, one column per day; day numbers under every fifth column and the peak
    written above its column."""
    first = month.replace(day=1)
    days = []
    day = first
    while day.month == first.month:
        days.append(day)
        day += timedelta(days=1)
    width, left, top, plot = 400, 28, 16, 110
    step = (width - left - 4) / len(days)
    peak = max(list(hours_by_day.values()) + [0])
    scale = peak if peak > 0 else 1
    body = [f'<line x1="{left}" y1="{top + plot}" x2="{width - 2}" y2="{top + plot}" stroke="{MUTED}"/>',
            _text(left - 4, top + plot, "0", size=11, anchor="end", fill=MUTED),
            _text(left - 4, top + 10, people(scale), size=11, anchor="end", fill=MUTED)]
    for index, day in enumerate(days):
        value = hours_by_day.get(day, 0.0)
        height = plot * value / scale
        x = left + index * step
        body.append(_rect(x + 1, top + plot - height, max(step - 2, 1), height, SERIES[0]))
        if day.day == 1 or day.day % 5 == 0:
            body.append(_text(x + step / 2, top + plot + 14, str(day.day), size=11, anchor="middle", fill=MUTED))
        if peak and value == peak:
            body.append(_text(x + step / 2, top + plot - height - 3, people(value), size=11, anchor="middle"))
    rows = [[day.strftime("%d/%m"), people(hours_by_day[day], 2)] for day in days if hours_by_day.get(day)]
    return Chart(_svg(width, top + plot + 20, title, desc, body, "columns"), title, [], rows)


def day_timeline(title: str, desc: str, start: datetime, periods: list[tuple[datetime, datetime]],
                 *, now: datetime) -> Chart:
    """A day from midnight to midnight with the periods a machine ran, ticks every six hours and a mark
    for now."""
    width, left, right, top, track = 240, 2, 2, 2, 16
    span = width - left - right
    seconds = 24 * 3600

    def x(moment: datetime) -> float:
        offset = min(max((moment - start).total_seconds(), 0), seconds)
        return left + span * offset / seconds

    body = [_rect(left, top, span, track, TRACK)]
    for begin, end in periods:
        body.append(_rect(x(begin), top, max(x(end) - x(begin), 1), track, SERIES[0], css="ran"))
    for hour in (0, 6, 12, 18, 24):
        tick = left + span * hour / 24
        body.append(f'<line x1="{coord(tick)}" y1="{top + track}" x2="{coord(tick)}" y2="{top + track + 3}" '
                    f'stroke="{MUTED}"/>')
        anchor = "start" if hour == 0 else "end" if hour == 24 else "middle"
        body.append(_text(tick, top + track + 13, f"{hour:02d}", size=10, anchor=anchor, fill=MUTED))
    if start <= now < start + timedelta(seconds=seconds):
        body.append(f'<line x1="{coord(x(now))}" y1="{top - 2}" x2="{coord(x(now))}" y2="{top + track + 2}" '
                    f'stroke="{INK}" stroke-width="2"/>')
    rows = [[f"{begin:%H:%M}", f"{end:%H:%M}"] for begin, end in periods]
    return Chart(_svg(width, top + track + 16, title, desc, body, "timeline"), title, [], rows)


class _NoTarget:
    def __str__(self):
        from django.utils.translation import gettext

        return gettext("chưa đặt chỉ tiêu")


NO_TARGET = _NoTarget()
