from ninja import Router, Schema

router = Router(tags=["accounts"])


class MeOut(Schema):
    id: int
    email: str
    full_name: str
    phone: str
    organisation: str
    role: str
    language: str
    email_verified: bool
    labs: list[str]


@router.get("/me", response=MeOut, summary="Who is asking")
def me(request):
    user = request.user
    return MeOut(
        id=user.id, email=user.email, full_name=user.full_name, phone=user.phone, organisation=user.organisation,
        role=user.role, language=user.language, email_verified=user.email_verified,
        labs=list(user.staffed_labs.values_list("slug", flat=True)),
    )
