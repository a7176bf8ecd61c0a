"""Typed constructors for a verification's own log (`VerificationEvent`): call sites say what happened, not
how a row is spelled."""

from __future__ import annotations

from .models import Verification, VerificationEvent

Actor = VerificationEvent.Actor


def _write(v: Verification, kind: str, *, actor: str, message: str = "", from_status: str = "",
           to_status: str = "", user=None, data: dict | None = None) -> VerificationEvent:
    return VerificationEvent.objects.create(verification=v, kind=kind, actor=actor, message=message[:500],
                                            from_status=from_status, to_status=to_status, user=user,
                                            data=data or {})


def created_event(v: Verification, *, policy_note: str) -> VerificationEvent:
    return _write(v, "created", actor=Actor.SYSTEM, to_status=v.status, message=policy_note)


def transition_event(v: Verification, before: str, *, actor: str, message: str, user=None,
                     data: dict | None = None) -> VerificationEvent:
    return _write(v, "transition", actor=actor, from_status=before, to_status=v.status, message=message,
                  user=user, data=data)


def link_event(v: Verification, *, channels: list[str], actor: str = Actor.SYSTEM, user=None) -> VerificationEvent:
    text = "、".join(channels) if channels else "无可用渠道（请在后台复制链接发给买家）"
    return _write(v, "link", actor=actor, user=user, message=f"认证链接已发送：{text}", data={"channels": channels})


def opened_event(v: Verification, *, mode: str) -> VerificationEvent:
    return _write(v, "opened", actor=Actor.BUYER, message=f"买家打开认证页面（{mode}）")


def sumsub_event(v: Verification, *, kind: str, message: str, data: dict | None = None) -> VerificationEvent:
    return _write(v, kind, actor=Actor.SUMSUB, message=message, data=data)


def note_event(v: Verification, *, message: str, actor: str = Actor.SYSTEM, user=None,
               data: dict | None = None) -> VerificationEvent:
    return _write(v, "note", actor=actor, message=message, user=user, data=data)
