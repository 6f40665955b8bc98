from django import template

register = template.Library()


@register.filter
def metric(cell, name: str):
    """A figure of a report cell, shares shown as percentages."""
    value = getattr(cell, name)
    if name.endswith("_rate"):
        return "—" if value is None else f"{value:.1%}"
    return value


@register.filter
def percent_of(value, peak) -> float:
    return round(100 * float(value) / float(peak), 1) if peak else 0.0


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key)
