"""The e-mail notifier: one message per notification, sent over SMTP with smtplib.

The message's subject is the notification's title; its body, as plain text and as HTML
alternatives, lists every alert with its labels, annotations and times. A page
(`notification.page` with a `person`) goes to the paged person's address instead of the
configured recipients.

SMTP's own classes of reply decide what is retried: 4xx replies are transient, 5xx permanent
(RFC 5321, section 4.2.1); timeouts and refused or dropped connections are retried too.
The message has no Date or Message-ID header: they would read the wall clock and a random
source, and the submission server adds both.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from html import escape

from modelfleet.alerts.alert import Alert
from modelfleet.alerts.notification import Notification
from modelfleet.alerts.notifiers.base import rfc3339
from modelfleet.config.alerting import EmailConfig
from modelfleet.errors import DeliveryFailed


def recipients(
    notification: Notification, to: Sequence[str], *, to_customer: bool = False
) -> list[str]:
    """Who gets the mail: the paged person for a page, else the configured addresses, and
    with `to_customer` the customers the alerts name (their `customer_email` annotation)."""
    if notification.page and notification.person is not None:
        return [notification.person.email]
    customers = [
        a.annotations["customer_email"]
        for a in notification.alerts
        if to_customer and a.annotations.get("customer_email")
    ]
    return list(dict.fromkeys([*to, *customers]))


def email_message(notification: Notification, *, sender: str, to: Sequence[str]) -> EmailMessage:
    """The mail for a notification: subject, plain-text and HTML alternatives."""
    message = EmailMessage()
    # A label value with a line break must not end the header early.
    message["Subject"] = " ".join(notification.title.split())
    message["From"] = sender
    message["To"] = ", ".join(to)
    message.set_content(_text(notification))
    message.add_alternative(_html(notification), subtype="html")
    return message


def _lead(notification: Notification) -> list[str]:
    """The lines before the alerts: who is paged, the notes, the counts."""
    lines = []
    person = notification.person
    if person is not None:
        level = f", level {notification.level}" if notification.level is not None else ""
        lines.append(f"Paging {person.name} <{person.email}>{level}.")
    lines += notification.notes
    firing = sum(1 for a in notification.alerts if a.firing)
    counts = f"{firing} firing, {len(notification.alerts) - firing} resolved."
    if notification.truncated:
        counts += f" {notification.truncated} more not listed."
    lines.append(counts)
    return lines


def _times(alert: Alert) -> list[tuple[str, str]]:
    times = [("started", rfc3339(alert.starts_at))]
    if alert.anomaly_at is not None:
        times.append(("anomalous since", rfc3339(alert.anomaly_at)))
    if alert.ends_at is not None:
        times.append(("ended", rfc3339(alert.ends_at)))
    return times


def _heading(alert: Alert) -> str:
    return f"[{alert.state.upper()}] {alert.name or alert.fingerprint} ({alert.severity})"


def _text(notification: Notification) -> str:
    lines = [notification.title, "", *_lead(notification)]
    for alert in notification.alerts:
        lines += ["", _heading(alert), "  labels:"]
        lines += [f"    {k} = {v}" for k, v in sorted(alert.labels.items())]
        if alert.annotations:
            lines.append("  annotations:")
            lines += [f"    {k}: {v}" for k, v in sorted(alert.annotations.items())]
        lines += [f"  {name}: {value}" for name, value in _times(alert)]
    lines += ["", f"modelfleet: {notification.external_url}"]
    return "\n".join(lines) + "\n"


def _html(notification: Notification) -> str:
    parts = [f"<h2>{escape(notification.title)}</h2>"]
    parts += [f"<p>{escape(line)}</p>" for line in _lead(notification)]
    for alert in notification.alerts:
        rows = [("label", k, v) for k, v in sorted(alert.labels.items())]
        rows += [("annotation", k, v) for k, v in sorted(alert.annotations.items())]
        rows += [("time", k, v) for k, v in _times(alert)]
        parts.append(f"<h3>{escape(_heading(alert))}</h3>")
        parts.append(
            "<table>"
            + "".join(
                f"<tr><td>{kind}</td><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                for kind, k, v in rows
            )
            + "</table>"
        )
    url = escape(notification.external_url, quote=True)
    parts.append(f'<p><a href="{url}">Open modelfleet</a></p>')
    return "<html><body>\n" + "\n".join(parts) + "\n</body></html>\n"


class EmailNotifier:
    """Sends `email_message` through `config.smarthost`, with STARTTLS and login if configured."""

    def __init__(
        self, config: EmailConfig, *, password: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.config = config
        self.password = password
        self.timeout_s = timeout_s

    def send(self, notification: Notification) -> None:
        to = recipients(notification, self.config.to, to_customer=self.config.to_customer)
        if not to:
            raise DeliveryFailed(
                "email: no recipients; the receiver has no `to` and this is not a page",
                retryable=False,
            )
        if self.config.username and self.password is None:
            raise DeliveryFailed(
                f"email: {self.config.smarthost} needs a password for "
                f"{self.config.username!r}; set `password_env` and that variable",
                retryable=False,
            )
        message = email_message(notification, sender=self.config.sender, to=to)
        host, port = self.config.smarthost.rsplit(":", 1)
        where = f"email via {self.config.smarthost}"
        try:
            self._submit(host, int(port), message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryFailed(
                f"{where}: every recipient refused: {_refusals(exc.recipients)}",
                retryable=all(400 <= c < 500 for c in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            reply = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryFailed(
                f"{where}: {type(exc).__name__}: {exc.smtp_code} {reply}",
                retryable=400 <= exc.smtp_code < 500,
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise DeliveryFailed(
                f"{where}: the server disconnected: {exc}", retryable=True
            ) from exc
        except smtplib.SMTPException as exc:  # e.g. STARTTLS or AUTH not offered
            raise DeliveryFailed(f"{where}: {type(exc).__name__}: {exc}", retryable=False) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(f"{where}: {exc}", retryable=False) from exc
        except OSError as exc:  # refused, unreachable, timed out, name not resolved
            raise DeliveryFailed(f"{where}: {type(exc).__name__}: {exc}", retryable=True) from exc

    def _submit(self, host: str, port: int, message: EmailMessage) -> None:
        smtp = smtplib.SMTP(timeout=self.timeout_s)
        try:
            code, reply = smtp.connect(host, port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            if self.config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.config.username:
                smtp.login(self.config.username, self.password or "")
            refused = smtp.send_message(message)
            if refused:
                # Some recipients took it, some did not. A retry sends it to them all again,
                # which for an alert is better than never reaching the others.
                raise DeliveryFailed(
                    f"email via {self.config.smarthost}: some recipients refused: "
                    f"{_refusals(refused)}",
                    retryable=all(400 <= code < 500 for code, _ in refused.values()),
                )
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{addr}: {code} {reply.decode(errors='replace')}"
        for addr, (code, reply) in refused.items()
    )
