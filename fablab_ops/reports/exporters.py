"""The monthly report as files: one interface, one small class per format.

An exporter has an `identifier`, a `name` and `render(report, language)` returning
(file name, media type, bytes); adding a format is adding a class to EXPORTERS.
"""

import csv
import io

from django.utils.translation import gettext as _

from fablab_ops.reports.formats import (
    MACHINE_COLUMNS,
    METRICS,
    Exporter,
    figure_rows,
    kind_label,
    metric_values,
    month_label,
    scope_name,
    sheet_name,
    status_label,
)
from fablab_ops.reports.pdf import PdfExporter


# (attribute of ClassFigures, label, is a share)
class CsvExporter(Exporter):
    identifier = "csv"
    name = "CSV"
    media_type = "text/csv; charset=utf-8"
    extension = "csv"

    def build(self, report):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([_("Báo cáo tháng"), month_label(report)])
        writer.writerow([_("Phòng lab"), _("Loại khóa học"), *[str(label) for _n, label, _s in METRICS],
                         _("Chứng nhận đã cấp")])
        for lab, kind, cell in figure_rows(report):
            writer.writerow([lab.name, kind_label(kind), *metric_values(cell, shares_as_text=True),
                             lab.certifications_granted if not kind else ""])
        writer.writerow([])
        writer.writerow([_("Phòng lab"), *[str(c) for c in MACHINE_COLUMNS]])
        for lab in report.labs:
            for machine in lab.machines:
                writer.writerow([lab.name, machine.machine, machine.machine_type, machine.hours_booked,
                                 machine.hours_used, machine.no_show_reservations])
        writer.writerow([report.network.name, _("Tổng"), "", report.network.hours_booked,
                         report.network.hours_used, report.network.no_show_reservations])
        writer.writerow([])
        writer.writerow([_("Phòng lab"), _("Chỉ tiêu lớp học"), _("Lớp học từ đầu năm"), _("Chỉ tiêu lượt tham gia"),
                         _("Lượt tham gia từ đầu năm")])
        for lab in [*report.labs, report.network]:
            p = lab.progress
            writer.writerow([lab.name, p.target_classes, p.classes_to_date, p.target_turns, p.turns_to_date])
        # The BOM makes Excel read the file as UTF-8, so Vietnamese shows correctly.
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")


class XlsxExporter(Exporter):
    identifier = "xlsx"
    name = "Excel (XLSX)"
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    extension = "xlsx"

    def build(self, report):
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font, PatternFill
        from openpyxl.utils import get_column_letter

        header_font = Font(bold=True, color="FFFFFF")
        header_fill = PatternFill("solid", fgColor="0B6E4F")
        total_font = Font(bold=True)

        def table(sheet, headers, rows, *, total=None, formats=None):
            start = sheet.max_row + 2 if sheet.max_row > 1 else 3
            for column, title in enumerate(headers, 1):
                cell = sheet.cell(row=start, column=column, value=str(title))
                cell.font, cell.fill = header_font, header_fill
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            for offset, values in enumerate(rows, 1):
                for column, value in enumerate(values, 1):
                    cell = sheet.cell(row=start + offset, column=column, value=value)
                    if formats and column in formats:
                        cell.number_format = formats[column]
            if total is not None:
                row = start + len(rows) + 1
                for column, value in enumerate(total, 1):
                    cell = sheet.cell(row=row, column=column, value=value)
                    cell.font = total_font
                    if formats and column in formats:
                        cell.number_format = formats[column]

        def widths(sheet, first=34):
            sheet.column_dimensions["A"].width = first
            for column in range(2, sheet.max_column + 1):
                sheet.column_dimensions[get_column_letter(column)].width = 16

        share_formats = {i + 2: "0.0%" for i, (_n, _l, share) in enumerate(METRICS) if share}
        workbook = Workbook()
        summary = workbook.active
        taken: set = set()
        summary.title = sheet_name(_("Tổng hợp"), taken)
        summary["A1"] = f"{_('Báo cáo tháng')} {month_label(report)} — {scope_name(report)}"
        summary["A1"].font = Font(bold=True, size=14)
        metric_headers = [str(label) for _n, label, _s in METRICS]
        table(summary, [_("Phòng lab"), *metric_headers, _("Chứng nhận đã cấp"), _("Giờ đặt máy"),
                        _("Giờ sử dụng thực tế")],
              [[lab.name, *metric_values(lab.total, shares_as_text=False), lab.certifications_granted,
                lab.hours_booked, lab.hours_used] for lab in report.labs],
              total=[_("Tổng"), *metric_values(report.network.total, shares_as_text=False),
                     report.network.certifications_granted, report.network.hours_booked,
                     report.network.hours_used],
              formats=share_formats)
        table(summary, [_("Phòng lab"), _("Chỉ tiêu lớp học"), _("Lớp học từ đầu năm"), _("Chỉ tiêu lượt tham gia"),
                        _("Lượt tham gia từ đầu năm")],
              [[lab.name, lab.progress.target_classes, lab.progress.classes_to_date, lab.progress.target_turns,
                lab.progress.turns_to_date] for lab in [*report.labs, report.network]])
        widths(summary)
        for lab in report.labs:
            # Sheet names are the labs' short names (Excel cuts at 31 characters; never mid-word here).
            sheet = workbook.create_sheet(sheet_name(lab.short_name or lab.name, taken))
            sheet["A1"] = f"{lab.name} — {month_label(report)}"
            sheet["A1"].font = Font(bold=True, size=13)
            table(sheet, [_("Loại khóa học"), *metric_headers],
                  [[kind_label(kind), *metric_values(cell, shares_as_text=False)]
                   for kind, cell in lab.by_kind.items()],
                  total=[_("Tổng"), *metric_values(lab.total, shares_as_text=False)], formats=share_formats)
            table(sheet, [_("Bắt đầu"), _("Khóa học"), _("Trạng thái"), _("Số chỗ"), _("Lượt đăng ký"),
                          _("Điểm danh có mặt"), _("Vắng mặt"), _("Danh sách chờ dài nhất")],
                  [[row.start.replace(tzinfo=None), row.course, status_label(row.status), row.capacity,
                    row.registrations, row.attendance, row.no_shows, row.peak_waitlist] for row in lab.sessions],
                  formats={1: "DD/MM/YYYY HH:MM"})
            table(sheet, [str(c) for c in MACHINE_COLUMNS],
                  [[m.machine, m.machine_type, m.hours_booked, m.hours_used, m.no_show_reservations]
                   for m in lab.machines],
                  total=[_("Tổng"), "", lab.hours_booked, lab.hours_used, lab.no_show_reservations])
            widths(sheet)
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()



EXPORTERS = {exporter.identifier: exporter for exporter in (CsvExporter(), XlsxExporter(), PdfExporter())}
