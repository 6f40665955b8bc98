from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from fablab_ops.booking.models import Reservation


@login_required
def my_reservations(request):
    reservations = Reservation.objects.filter(user=request.user).select_related("machine__lab")
    return render(request, "booking/my_reservations.html", {"reservations": reservations})
