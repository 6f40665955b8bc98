"""What every page's menu needs to know about the user, answered by the policy."""

from fablab_ops import policy


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"may_open_admin": False, "email_unverified": False, "menu_labs": ()}
    return {"may_open_admin": policy.may_open_admin(user), "email_unverified": not user.email_verified,
            "may_manage_courses": policy.may_manage_courses(user),
            "may_mark_inductions": policy.may_mark_inductions(user), "may_read_reports": policy.may_read_reports(user),
            "menu_labs": policy.menu_labs(user) if user.is_technician else ()}
