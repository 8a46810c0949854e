"""The patient's pages under /p/<token>/ (a link issued by the clinic; no account)."""

from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("<str:token>/", views.home, name="home"),
    path("<str:token>/diary/", views.diary, name="diary"),
    path("<str:token>/diary/saved/", views.diary_saved, name="diary_saved"),
    path("<str:token>/problem/", views.problem, name="problem"),
    path("<str:token>/problem/<int:report_id>/", views.problem_sent, name="problem_sent"),
]
