"""The DejaVu fonts the service prints PDFs with (every Vietnamese letter; Debian's Liberation Serif lacks ơ, ư
and the stacked marks), shipped with the code, and their registration with reportlab."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def register(*names: str) -> None:
    """Make each font (a file FOLDER/<name>.ttf) known to reportlab under its own name, once."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for name in names:
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(FOLDER / f"{name}.ttf")))
