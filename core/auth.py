"""Who must give a second factor, which address a request comes from, and when API tokens die.

One place for the rules the admin site, the token endpoint, DRF's throttles and django-axes share.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.utils.module_loading import import_string
from rest_framework.throttling import BaseThrottle


def client_ip_address(request) -> str | None:
    """Return the client address the throttles and the lockout key on.

    DRF's rule, read from REST_FRAMEWORK["NUM_PROXIES"] (settings.TRUSTED_PROXY_COUNT): with no trusted
    proxy it is REMOTE_ADDR and X-Forwarded-For is ignored; with N proxies it is the address the
    outermost trusted proxy saw (the N-th from the right of X-Forwarded-For). django-axes calls this
    (AXES_CLIENT_IP_CALLABLE), so a lockout and a throttle always agree on who the client is.
    """
    return BaseThrottle().get_ident(request)


def is_demo_exempt(user) -> bool:
    """Return True for a demo user excused from the second factor: only with DEBUG on and the setting set."""
    if not (settings.DEBUG and getattr(settings, "OTP_EXEMPT_DEMO_USERS", False)):
        return False
    # The demo data lives a layer above (intake/); settings name its predicate, as for AXES_CLIENT_IP_CALLABLE.
    return bool(import_string(settings.OTP_DEMO_USER_CALLABLE)(user))


def has_confirmed_device(user) -> bool:
    """Return True when the user has a confirmed second-factor device."""
    from django_otp import devices_for_user

    return any(True for _ in devices_for_user(user, confirmed=True))


def otp_required(user) -> bool:
    """Return True when this user must give a TOTP code to log in to the admin or obtain an API token.

    Staff (everyone with a clinic role reaches the admin) and anyone who enrolled a device, unless
    exempted as a demo user in DEBUG.
    """
    if is_demo_exempt(user):
        return False
    return bool(user.is_staff or user.is_superuser or has_confirmed_device(user))


def user_pre_save_mark_token_revocation(sender, instance, raw=False, update_fields=None, **kwargs):
    """Mark a user whose password changes or who is deactivated, so post_save revokes their API tokens.

    The stored hash changing counts as a password change, except when set_password() was given the same
    password again. (Django's own hash upgrade on login, after a hasher's iterations grew, also revokes
    older tokens once: it does not say it is one, and revoking too much is the safe side.)
    """
    instance._revoke_api_tokens = False
    if raw or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return  # e.g. last_login on every login
    stored = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if stored is None:
        return
    deactivated = stored["is_active"] and not instance.is_active
    if instance.password == stored["password"]:
        password_changed = False
    else:
        raw_password = getattr(instance, "_password", None)
        password_changed = raw_password is None or not check_password(raw_password, stored["password"])
    instance._revoke_api_tokens = deactivated or password_changed


def user_post_save_revoke_tokens(sender, instance, created=False, raw=False, **kwargs):
    """Delete every API token of a user marked by user_pre_save_mark_token_revocation."""
    if getattr(instance, "_revoke_api_tokens", False):
        from knox.models import get_token_model

        get_token_model().objects.filter(user=instance).delete()
        instance._revoke_api_tokens = False


def connect_signals() -> None:
    """Connect the token revocation to the user model's saves (called from CoreConfig.ready)."""
    from django.db.models.signals import post_save, pre_save

    user_model = get_user_model()
    pre_save.connect(user_pre_save_mark_token_revocation, sender=user_model, dispatch_uid="registry_revoke_mark")
    post_save.connect(user_post_save_revoke_tokens, sender=user_model, dispatch_uid="registry_revoke_tokens")
