"""Who may see which report: coordinators the network, technicians their own labs."""

from django.utils.translation import gettext as _

from fablab_ops.errors import PermissionDenied
from fablab_ops.machines.models import Lab


def allowed_scope(user, lab_slug: str) -> Lab | None:
    """The lab a user may report on (None: the whole network), or PermissionDenied."""
    if lab_slug in ("", "all"):
        if user.is_coordinator:
            return None
        raise PermissionDenied(_("Chỉ điều phối viên xem được báo cáo toàn mạng lưới."), code="coordinators_only")
    lab = Lab.objects.filter(slug=lab_slug).first()
    if lab is None:
        from fablab_ops.errors import NotFound

        raise NotFound(_("Không tìm thấy phòng lab."))
    if user.is_coordinator or lab.technicians.filter(pk=user.pk).exists():
        return lab
    raise PermissionDenied(_("Bạn không phụ trách phòng lab này."), code="not_lab_staff")
