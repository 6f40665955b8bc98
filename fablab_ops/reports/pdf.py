"""The monthly report as the department files it: a PDF in the layout of an administrative report.

Decree 30/2020/NĐ-CP sets the layout: top left the governing body and, under it, the issuing unit (bold,
underlined); top right the national title and motto; then the document number on the left and the place and
date on the right; the title "BÁO CÁO" with its subject; the body; the signature block and "Nơi nhận". The
names come from settings (REPORT_*), so the report stays right when administrative names change. A lab's
report is issued by the lab under its host and totals that lab only. Pages are numbered "Trang x/y".
Chart labels are measured with the font's widths and wrapped, never cut or overlapping.
"""

import io

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab_ops import fonts
from fablab_ops.charts import people
from fablab_ops.reports.formats import METRICS, Exporter, kind_label, month_label, scope_name
from fablab_ops.reports.services import ClassFigures, MonthlyReport

SERIF, SERIF_BOLD, SERIF_ITALIC = "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic"
ACCENT = "#0B6E4F"
SECOND = "#B45309"


def _fonts() -> None:
    from reportlab.pdfbase import pdfmetrics

    fonts.register(SERIF, SERIF_BOLD, SERIF_ITALIC)
    pdfmetrics.registerFontFamily(SERIF, normal=SERIF, bold=SERIF_BOLD, italic=SERIF_ITALIC, boldItalic=SERIF_BOLD)


def figure(cell: ClassFigures, name: str) -> str:
    value = getattr(cell, name)
    if name.endswith("_rate"):
        return "—" if value is None else people(100 * value, 1) + " %"
    return people(value)


def share(done: int, target: int) -> str:
    return people(100 * done / target, 1) + " %" if target else "—"


def issuer(report: MonthlyReport) -> tuple[str, str, str, str]:
    """(governing body, issuing unit, issuer's code, signer's position) of this report."""
    if report.is_network:
        return (settings.REPORT_GOVERNING_BODY, settings.REPORT_ISSUING_UNIT, settings.REPORT_NETWORK_CODE,
                settings.REPORT_SIGNER_POSITION)
    lab = report.lab
    return (lab.host or settings.REPORT_GOVERNING_BODY, lab.name_vi, lab.slug.upper(),
            settings.REPORT_LAB_SIGNER_POSITION)


def recipients(report: MonthlyReport) -> list[str]:
    if report.is_network:
        return [item.strip() for item in settings.REPORT_RECIPIENTS.split(";") if item.strip()]
    return [_("%(unit)s (để tổng hợp)") % {"unit": settings.REPORT_ISSUING_UNIT}, _("Lưu: VT")]


def date_line(report: MonthlyReport) -> str:
    day = timezone.localtime(report.generated_at)
    return _("%(place)s, ngày %(day)02d tháng %(month)02d năm %(year)d") % {
        "place": settings.REPORT_PLACE, "day": day.day, "month": day.month, "year": day.year}


class PdfExporter(Exporter):
    identifier = "pdf"
    name = "PDF"
    media_type = "application/pdf"
    extension = "pdf"

    def build(self, report: MonthlyReport) -> bytes:
        from reportlab.graphics.shapes import Drawing, Rect, String
        from reportlab.lib import colors
        from reportlab.lib.enums import TA_CENTER
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.lib.units import mm
        from reportlab.lib.utils import simpleSplit
        from reportlab.pdfbase.pdfmetrics import stringWidth
        from reportlab.pdfgen.canvas import Canvas
        from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

        _fonts()
        width = A4[0] - 30 * mm - 15 * mm  # Decree 30 margins: left 30 mm, right 15 mm
        body = ParagraphStyle("body", fontName=SERIF, fontSize=11, leading=15)
        centre = ParagraphStyle("centre", parent=body, alignment=TA_CENTER)
        centre_bold = ParagraphStyle("centre-bold", parent=centre, fontName=SERIF_BOLD)
        heading = ParagraphStyle("heading", parent=body, fontName=SERIF_BOLD, fontSize=12, leading=16,
                                 spaceBefore=8, spaceAfter=4, keepWithNext=1)
        small = ParagraphStyle("small", parent=body, fontSize=9, leading=12)
        cell = ParagraphStyle("cell", parent=body, fontSize=8.5, leading=10.5)
        head = ParagraphStyle("head", parent=cell, fontName=SERIF_BOLD, textColor=colors.white)
        governing, unit, code, position = issuer(report)
        subject = (_("Kết quả hoạt động tháng %(month)s của %(scope)s")
                   % {"month": month_label(report), "scope": scope_name(report)})

        def para(text, style):
            return Paragraph(str(text).replace("&", "&amp;").replace("<", "&lt;"), style)

        def grid(headers, rows, *, total=None, first=0.34):
            data = [[para(h, head) for h in headers]] + [[para(v, cell) for v in row] for row in rows]
            if total:
                data.append([Paragraph(f"<b>{str(v).replace('&', '&amp;')}</b>", cell) for v in total])
            rest = (width * (1 - first)) / max(len(headers) - 1, 1)
            table = Table(data, colWidths=[width * first] + [rest] * (len(headers) - 1), repeatRows=1)
            table.setStyle(TableStyle([
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(ACCENT)),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F2F4F7")]),
            ]))
            return table

        def bars(caption, categories, series, unit_text=""):
            """Horizontal bars; each category's name above its bars, wrapped to the width (measured)."""
            size, bar, gap = 8, 9, 3
            values = [v for _name, vs in series for v in vs]
            labels = [people(v) + (f" {unit_text}" if unit_text else "") for v in values]
            room = max([stringWidth(text, SERIF, size) for text in labels] + [0]) + 6
            span = width - room
            peak = max(values + [0]) or 1
            lines = [simpleSplit(str(name), SERIF_BOLD, size, width) for name in categories]
            height = 16 + sum(len(ls) * (size + 2) + len(series) * (bar + gap) + 6 for ls in lines)
            drawing = Drawing(width, height)
            y = height - 10
            x = 0
            for index, (name, _vs) in enumerate(series):  # the legend, laid out by measured widths
                colour = colors.HexColor(ACCENT if index == 0 else SECOND)
                drawing.add(Rect(x, y - 1, 8, 8, fillColor=colour, strokeColor=None))
                drawing.add(String(x + 11, y, str(name), fontName=SERIF, fontSize=size))
                x += 11 + stringWidth(str(name), SERIF, size) + 16
            y -= 8
            for position_, name_lines in enumerate(lines):
                for line in name_lines:
                    y -= size + 2
                    drawing.add(String(0, y + 2, line, fontName=SERIF_BOLD, fontSize=size))
                for index, (_name, vs) in enumerate(series):
                    y -= bar + gap
                    value = vs[position_]
                    length = span * value / peak
                    colour = colors.HexColor(ACCENT if index == 0 else SECOND)
                    drawing.add(Rect(0, y, max(length, 0.5), bar, fillColor=colour, strokeColor=None))
                    text = people(value) + (f" {unit_text}" if unit_text else "")
                    drawing.add(String(length + 3, y + 2, text, fontName=SERIF, fontSize=size))
                y -= 6
            return [Paragraph(caption, heading), drawing]

        # --- the title block ---
        centre = ParagraphStyle("block", parent=centre, fontSize=10.5, leading=13.5)
        left = [para(governing.upper(), centre),
                Paragraph(f"<u><b>{unit.upper().replace('&', '&amp;')}</b></u>", centre)]
        right = [Paragraph("<b>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</b>", centre),
                 Paragraph("<u><b>Độc lập - Tự do - Hạnh phúc</b></u>", centre)]
        number = settings.REPORT_NUMBER_PATTERN.replace("{code}", code)
        dated = ParagraphStyle("dated", parent=centre, fontName=SERIF_ITALIC, fontSize=10, leading=13)
        block = Table([[left, right], [para(number, centre), para(date_line(report), dated)]],
                      colWidths=[width * 0.4, width * 0.6])
        block.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                   ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 1), (-1, 1), 6)]))
        story = [block, Spacer(1, 10 * mm), Paragraph("<b>BÁO CÁO</b>", ParagraphStyle(
            "title", parent=centre_bold, fontSize=14, leading=18)), para(subject, centre_bold), Spacer(1, 6 * mm)]
        centre = ParagraphStyle("centre", parent=body, alignment=TA_CENTER)

        # --- 1. the month's figures ---
        if report.is_network:
            columns = [*report.labs, report.network]
            headers = [_("Chỉ số"), *[lab.short_name or lab.name for lab in columns]]
            cells = [lab.total for lab in columns]
            extra = [(_("Chứng nhận đã cấp"), [people(lab.certifications_granted) for lab in columns]),
                     (_("Giờ đặt máy"), [people(lab.hours_booked) for lab in columns]),
                     (_("Giờ sử dụng thực tế"), [people(lab.hours_used) for lab in columns])]
        else:
            lab = report.labs[0]
            headers = [_("Chỉ số"), *[kind_label(kind) for kind in lab.by_kind], report.network.short_name]
            cells = [*lab.by_kind.values(), lab.total]
            extra = []  # certifications and machine hours are a lab's total, given below
        rows = [[label, *[figure(c, name) for c in cells]] for name, label, _s in METRICS]
        rows += [[label, *values] for label, values in extra]
        story += [Paragraph(_("1. Kết quả tổ chức lớp học trong tháng"), heading),
                  grid(headers, rows, first=0.28 if report.is_network else 0.3)]
        if not report.is_network:
            lab = report.labs[0]
            story.append(Paragraph(_("Chứng nhận đã cấp: %(n)s.") % {"n": people(lab.certifications_granted)},
                                   small))

        # --- 2. machines ---
        story.append(Paragraph(_("2. Sử dụng máy"), heading))
        machine_rows = [[f"{m.machine} ({lab.short_name})" if report.is_network else m.machine, m.machine_type,
                         people(m.hours_booked), people(m.hours_used), people(m.no_show_reservations)]
                        for lab in report.labs for m in lab.machines]
        story.append(grid([_("Máy"), _("Loại máy"), _("Giờ đặt máy"), _("Giờ sử dụng thực tế"),
                           _("Lượt đặt máy vắng mặt")], machine_rows,
                          total=[report.network.name, "", people(report.network.hours_booked),
                                 people(report.network.hours_used), people(report.network.no_show_reservations)],
                          first=0.3))

        # --- 3. the year's progress ---
        story.append(Paragraph(_("3. Tiến độ thực hiện chỉ tiêu năm %(year)d (từ 01/01 đến hết tháng %(month)s)")
                               % {"year": report.month.year, "month": month_label(report)}, heading))
        progress_rows = []
        for lab in ([*report.labs, report.network] if report.is_network else report.labs):
            p = lab.progress
            progress_rows.append([lab.name, people(p.target_classes) if p.target_classes else _("chưa đặt"),
                                  people(p.classes_to_date), share(p.classes_to_date, p.target_classes),
                                  people(p.target_turns) if p.target_turns else _("chưa đặt"),
                                  people(p.turns_to_date), share(p.turns_to_date, p.target_turns)])
        story.append(grid([_("Phòng lab"), _("Chỉ tiêu lớp học"), _("Lớp học từ đầu năm"), _("Tỷ lệ"),
                           _("Chỉ tiêu lượt tham gia"), _("Lượt tham gia từ đầu năm"), _("Tỷ lệ")],
                          progress_rows, first=0.28))

        # --- charts ---
        if report.is_network:
            names = [lab.name for lab in report.labs]
            story += bars(_("Lượt đăng ký và điểm danh theo phòng lab"), names,
                          [(_("Lượt đăng ký"), [lab.total.registrations for lab in report.labs]),
                           (_("Điểm danh có mặt"), [lab.total.attendance for lab in report.labs])])
            story += bars(_("Giờ sử dụng máy theo phòng lab"), names,
                          [(_("Giờ đặt máy"), [lab.hours_booked for lab in report.labs]),
                           (_("Giờ sử dụng thực tế"), [lab.hours_used for lab in report.labs])], "h")
        elif report.labs[0].machines:
            machines = report.labs[0].machines
            story += bars(_("Giờ sử dụng máy"), [m.machine for m in machines],
                          [(_("Giờ đặt máy"), [m.hours_booked for m in machines]),
                           (_("Giờ sử dụng thực tế"), [m.hours_used for m in machines])], "h")

        # --- per-lab detail (network) ---
        if report.is_network:
            story.append(Paragraph(_("4. Chi tiết theo loại khóa học"), heading))
            for lab in report.labs:
                kinds = list(lab.by_kind)
                story += [KeepTogether([
                    Paragraph(lab.name.replace("&", "&amp;"), ParagraphStyle("sub", parent=small, fontName=SERIF_BOLD)),
                    grid([_("Chỉ số"), *[kind_label(k) for k in kinds], _("Tổng")],
                         [[label, *[figure(lab.by_kind[k], name) for k in kinds], figure(lab.total, name)]
                          for name, label, _s in METRICS], first=0.3)]), Spacer(1, 3 * mm)]

        # --- signature and recipients ---
        received = [Paragraph("<b><i>Nơi nhận:</i></b>", small)]
        received += [para(f"- {item};" if i < len(recipients(report)) - 1 else f"- {item}.", small)
                     for i, item in enumerate(recipients(report))]
        signer = [para(position.upper(), centre_bold),
                  Paragraph(f"<i>{_('(Ký, ghi rõ họ tên)')}</i>", ParagraphStyle("sign-note", parent=centre,
                                                                                 fontSize=9)),
                  Spacer(1, 22 * mm),
                  para(settings.REPORT_SIGNER_NAME if report.is_network and settings.REPORT_SIGNER_NAME
                       else "……………………………", centre_bold)]
        sign = Table([[received, signer]], colWidths=[width * 0.5, width * 0.5])
        sign.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
        story += [Spacer(1, 8 * mm), KeepTogether([
            para(_("Báo cáo lập tự động lúc %(time)s từ dữ liệu của hệ thống đặt lịch Fablab.") % {
                "time": timezone.localtime(report.generated_at).strftime("%H:%M %d/%m/%Y")}, small),
            Spacer(1, 4 * mm), sign])]

        page_label = _("Trang %(page)d/%(pages)d")

        class NumberedCanvas(Canvas):
            """Holds the pages back until the end so each can say how many there are."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._pages = []

            def showPage(self):  # noqa: N802 (reportlab's name)
                self._pages.append(dict(self.__dict__))
                self._startPage()

            def save(self):
                total = len(self._pages)
                for state in self._pages:
                    self.__dict__.update(state)
                    self.setFont(SERIF, 9)
                    self.drawRightString(A4[0] - 15 * mm, 12 * mm, page_label % {"page": self._pageNumber,
                                                                                "pages": total})
                    super().showPage()
                super().save()

        buffer = io.BytesIO()
        document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=30 * mm, rightMargin=15 * mm,
                                     topMargin=20 * mm, bottomMargin=20 * mm,
                                     title=f"{_('Báo cáo tháng')} {month_label(report)} — {scope_name(report)}",
                                     author=unit, subject=subject)
        document.build(story, canvasmaker=NumberedCanvas)
        return buffer.getvalue()
