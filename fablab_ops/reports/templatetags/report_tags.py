from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def metric(cell, name: str):
    """A figure of a report cell, shares shown as percentages."""
    value = getattr(cell, name)
    if name.endswith("_rate"):
        # Localised like every other figure of the page: "72,9%" in Vietnamese, "72.9%" in English.
        return "—" if value is None else f"{floatformat(value * 100, 1)}%"
    return value


@register.filter
def percent_of(value, peak) -> float:
    return round(100 * float(value) / float(peak), 1) if peak else 0.0


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key)
