from django.http import HttpResponse
from ninja import Router, Schema

from fablab_ops.errors import DomainError
from fablab_ops.reports import access, services
from fablab_ops.reports.exporters import EXPORTERS, METRICS

router = Router(tags=["reports"])


class ErrorOut(Schema):
    code: str
    message: str


def figures(cell) -> dict:
    return {name: getattr(cell, name) for name, _label, _share in METRICS}


def lab_json(lab) -> dict:
    return {
        "lab": lab.slug, "name": lab.name, "total": figures(lab.total),
        "by_kind": {kind: figures(cell) for kind, cell in lab.by_kind.items()},
        "machines": [{**m.__dict__, "by_day": {day.isoformat(): hours for day, hours in m.by_day.items()}}
                     for m in lab.machines], "hours_booked": lab.hours_booked,
        "hours_used": lab.hours_used, "no_show_reservations": lab.no_show_reservations,
        "certifications_granted": lab.certifications_granted,
        "progress": lab.progress.__dict__ if lab.progress else None,
    }


@router.get("/monthly", response={200: dict, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
            summary="A month's class report (coordinators: network; technicians: their lab)")
def monthly(request, month: str, lab: str = "all"):
    scope = access.allowed_scope(request.user, lab)
    report = services.monthly_report(services.parse_month(month), lab=scope)
    return {"month": month, "labs": [lab_json(item) for item in report.labs], "network": lab_json(report.network)}


@router.get("/monthly/file", response={200: None, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
            summary="The month's report as CSV, XLSX or PDF")
def monthly_file(request, month: str, lab: str = "all", format: str = "xlsx", language: str = "vi"):
    exporter = EXPORTERS.get(format)
    if exporter is None:
        raise DomainError(f"format must be one of {', '.join(EXPORTERS)}", code="invalid_format")
    scope = access.allowed_scope(request.user, lab)
    report = services.monthly_report(services.parse_month(month), lab=scope)
    name, media_type, content = exporter.render(report, language if language in ("vi", "en") else "vi", lab)
    response = HttpResponse(content, content_type=media_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
