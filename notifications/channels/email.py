"""E-mail through Django's mail backend (SMTP settings in settings.EMAIL_*).

config: to (list of addresses; buyer events go to the notification's recipient instead), from_email
(default settings.DEFAULT_FROM_EMAIL), subject_prefix. Refused credentials, sender or recipients are
configuration errors; connection problems and 4xx SMTP answers are retried."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage

from common.http import ConfigurationError, PlatformError

from .base import BaseChannel, Message, as_list


class EmailChannel(BaseChannel):
    kind = "email"
    default_rate_limit = 60

    def recipients(self, message: Message) -> list[str]:
        if message.recipient:
            return [message.recipient]
        return as_list(self.config.get("to"))

    def validate(self) -> None:
        if not as_list(self.config.get("to")):
            raise ConfigurationError("email: 缺少配置项 to（收件人）")

    def send(self, message: Message) -> str:
        to = self.recipients(message)
        if not to:
            raise ConfigurationError("email: 没有收件人")
        subject = f"{self.config.get('subject_prefix', '')}{message.subject or message.event}"
        mail = EmailMessage(subject=subject[:200], body=message.text, to=to,
                            from_email=self.config.get("from_email") or settings.DEFAULT_FROM_EMAIL)
        try:
            mail.send(fail_silently=False)
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused,
                smtplib.SMTPNotSupportedError) as exc:
            raise ConfigurationError(f"email: {exc.__class__.__name__}: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            raise PlatformError(f"email: SMTP {exc.smtp_code} {exc.smtp_error!r}", code=exc.smtp_code,
                                retryable=400 <= exc.smtp_code < 500) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise PlatformError(f"email: {exc.__class__.__name__}: {exc}", retryable=True,
                                outcome_unknown=isinstance(exc, (smtplib.SMTPServerDisconnected, TimeoutError))
                                ) from exc
        return ""
