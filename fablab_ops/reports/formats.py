"""What every export of the monthly report shares: the figures' names and their order, the labels of kinds and
states, the month and scope as people read them, file and sheet names, and the exporters' common shape.
The CSV and XLSX exporters (exporters.py) and the PDF (pdf.py) build on it."""

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fablab_ops.reports.services import ClassFigures, LabReport, MonthlyReport

METRICS = [
    ("sessions_held", gettext_lazy("Buổi học đã tổ chức"), False),
    ("sessions_cancelled", gettext_lazy("Buổi học bị hủy"), False),
    ("seats_offered", gettext_lazy("Số chỗ"), False),
    ("registrations", gettext_lazy("Lượt đăng ký"), False),
    ("peak_waitlist", gettext_lazy("Danh sách chờ dài nhất"), False),
    ("attendance", gettext_lazy("Điểm danh có mặt"), False),
    ("participant_turns", gettext_lazy("Lượt tham gia"), False),
    ("unique_learners", gettext_lazy("Học viên (không trùng)"), False),
    ("first_time_learners", gettext_lazy("Học viên lần đầu"), False),
    ("fill_rate", gettext_lazy("Tỷ lệ lấp đầy"), True),
    ("no_show_rate", gettext_lazy("Tỷ lệ vắng mặt"), True),
]
MACHINE_COLUMNS = [gettext_lazy("Máy"), gettext_lazy("Loại máy"), gettext_lazy("Giờ đặt máy"),
                   gettext_lazy("Giờ sử dụng thực tế"), gettext_lazy("Lượt đặt máy vắng mặt")]


def status_label(status: str) -> str:
    """A session's state in the report: held (it took place), scheduled (still to come) or cancelled."""
    from fablab_ops.courses.models import SessionStatus

    if status == "held":
        return _("Đã tổ chức")
    try:
        return str(SessionStatus(status).label)
    except ValueError:
        return status


def kind_label(kind: str) -> str:
    from fablab_ops.courses.models import CourseKind

    return str(CourseKind(kind).label) if kind else _("Tất cả loại khóa học")


def metric_values(cell: ClassFigures, *, shares_as_text: bool) -> list:
    values = []
    for name, _label, share in METRICS:
        value = getattr(cell, name)
        if share:
            value = (f"{value:.1%}" if value is not None else "—") if shares_as_text else value
        values.append(value)
    return values


def figure_rows(report: MonthlyReport) -> list[tuple[LabReport, str, ClassFigures]]:
    """Every (lab, kind) cell, then each lab's total, then the network: the table all formats share."""
    rows = []
    for lab in [*report.labs, report.network]:
        for kind, cell in lab.by_kind.items():
            rows.append((lab, kind, cell))
        rows.append((lab, "", lab.total))
    return rows


def month_label(report: MonthlyReport) -> str:
    return f"{report.month:%m/%Y}"


def scope_name(report: MonthlyReport) -> str:
    """Whom the report is about: the network by its name, or the one lab."""
    from django.conf import settings

    return settings.REPORT_NETWORK_NAME if report.is_network else report.lab.name


SHEET_NAME_MAX = 31  # Excel's limit
SHEET_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", " "))


def sheet_name(text: str, taken: set) -> str:
    """A worksheet name within Excel's 31 characters, cut between whole words, unique in the workbook."""
    words = " ".join(str(text).translate(SHEET_FORBIDDEN).split()).split(" ")
    name = ""
    for word in words:
        candidate = f"{name} {word}".strip()
        if len(candidate) > SHEET_NAME_MAX:
            break
        name = candidate
    name = name or words[0][:SHEET_NAME_MAX]
    unique, number = name, 2
    while unique.casefold() in taken:
        suffix = f" {number}"
        unique, number = name[:SHEET_NAME_MAX - len(suffix)].rstrip() + suffix, number + 1
    taken.add(unique.casefold())
    return unique


def file_stem(report: MonthlyReport, scope: str) -> str:
    return f"bao-cao-fablab-{report.month:%Y-%m}-{scope}"


class Exporter:
    identifier = ""
    name = ""
    media_type = ""
    extension = ""

    def render(self, report: MonthlyReport, language: str = "vi", scope: str = "all") -> tuple[str, str, bytes]:
        with translation.override(language):
            content = self.build(report)
        return f"{file_stem(report, scope)}.{self.extension}", self.media_type, content

    def build(self, report: MonthlyReport) -> bytes:
        raise NotImplementedError
