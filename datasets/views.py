from django.db.models import Count
from django.shortcuts import render

from evalsite.roles import LEAD, role_required

from .models import Dataset


@role_required(LEAD)
def dataset_list(request):
    datasets = Dataset.objects.annotate(n_items=Count("items"))
    return render(request, "datasets/dataset_list.html", {"datasets": datasets})
