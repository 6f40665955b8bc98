"""The printable sign-in sheet: one A4 page per session, learners' names and a column to sign.

Names only (no e-mail or phone: the sheet lies on a table at the door). DejaVu Sans carries the
Vietnamese diacritics, as in the monthly report's PDF.
"""

import io

from django.utils import timezone
from django.utils.translation import gettext as _

from fablab_ops import fonts

# Blank rows after the names, for walk-ins the technician adds by hand.
SPARE_ROWS = 3


def _fonts():
    fonts.register("DejaVuSans", "DejaVuSans-Bold")


def sign_in_pdf(sessions: list) -> bytes:
    """`sessions` is [(session, [names])]; each session is one page, its rows shrunk to fit."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import cm
    from reportlab.pdfgen import canvas

    _fonts()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=0)
    pdf.setTitle(_("Danh sách ký tên"))
    width, height = A4
    left, right = 1.8 * cm, width - 1.8 * cm
    columns = [left, left + 1.2 * cm, left + 10.5 * cm, right]  # #, name, signature
    for session, names in sessions:
        local = timezone.localtime
        top = height - 2 * cm
        pdf.setFont("DejaVuSans-Bold", 15)
        pdf.drawString(left, top, _("DANH SÁCH KÝ TÊN"))
        pdf.setFont("DejaVuSans-Bold", 12)
        pdf.drawString(left, top - 0.8 * cm, session.course.title_vi[:80])
        pdf.setFont("DejaVuSans", 10)
        where = session.lab.name_vi if session.lab else _("Trực tuyến")
        start, end = local(session.start), local(session.end)
        pdf.drawString(left, top - 1.4 * cm, f"{_('Ngày')} {start:%d/%m/%Y}, {start:%H:%M}–{end:%H:%M} · {where}")
        instructor = session.course.instructor
        pdf.drawString(left, top - 1.9 * cm, f"{_('Giảng viên')}: {instructor or '……………………'}   ·   "
                                             f"{_('Số học viên đã đăng ký')}: {len(names)}")
        table_top = top - 2.7 * cm
        rows = len(names) + SPARE_ROWS
        row_height = min(0.9 * cm, (table_top - 2.5 * cm) / (rows + 1))
        font_size = max(min(11, row_height / cm * 12), 6)
        y = table_top
        pdf.setFont("DejaVuSans-Bold", font_size)
        for x, label in zip(columns, ["#", _("Họ và tên"), _("Chữ ký")], strict=False):
            pdf.drawString(x + 0.15 * cm, y - row_height + 0.3 * row_height, label)
        pdf.setFont("DejaVuSans", font_size)
        pdf.line(left, y, right, y)
        for index in range(rows + 1):
            y_next = y - row_height
            pdf.line(left, y_next, right, y_next)
            if index >= 1:
                number = index
                name = names[number - 1] if number <= len(names) else ""
                pdf.drawString(columns[0] + 0.15 * cm, y_next + 0.3 * row_height, str(number))
                pdf.drawString(columns[1] + 0.15 * cm, y_next + 0.3 * row_height, name[:60])
            y = y_next
        for x in columns:
            pdf.line(x, table_top, x, y)
        pdf.setFont("DejaVuSans", 8)
        pdf.drawString(left, 1.5 * cm, _("In lúc %(time)s · Mạng lưới Fablab Bình Dương")
                       % {"time": f"{timezone.localtime():%d/%m/%Y %H:%M}"})
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()
