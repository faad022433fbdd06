"""The notification log (Alertmanager's nflog): what each aggregation group last told its receiver, and which
notification ids each notifier has received, kept in the store so a restart loses neither.

Without it a restarted worker starts with empty groups: the ``resolved`` of an alert whose ``firing`` was told
before the restart would be muted ("told only to receivers that were told it fired"), and a notification read
again after a crash would be sent twice. A group's entry is written once its notification reached every
notifier of the receiver (delivered or parked); a delivery is recorded as soon as it succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.base import now_utc


@dataclass(frozen=True)
class Told:
    """A group's last notification: each alert's status as told (fingerprint -> status), when (the dispatcher's
    clock, seconds) and how many repeats of the same content it had been."""

    notified: dict[str, str]
    last_sent: float
    repeats: int


class NotificationLog:
    def __init__(self, store):
        self.store = store

    def load(self) -> dict[str, Told]:
        """Group key -> what it last told, for groups with alerts still told as firing."""
        rows = self.store.query("SELECT group_key, notified, last_sent, repeats FROM {db}.notification_log FINAL")
        return {key: Told(dict(notified), last_sent, repeats) for key, notified, last_sent, repeats in rows if notified}

    def record(self, group_key: str, told: Told) -> None:
        self.store.insert_rows("notification_log", [[group_key, told.notified, told.last_sent, told.repeats, now_utc()]],
                               ["group_key", "notified", "last_sent", "repeats", "updated_at"])

    def delivered(self, notifier: str, notification_id: str) -> bool:
        """Whether ``notifier`` has received this notification already."""
        rows = self.store.query("SELECT count() FROM {db}.notification_deliveries WHERE notifier = {n:String} "
                                "AND id = {id:String}", {"n": notifier, "id": notification_id})
        return bool(rows[0][0])

    def mark_delivered(self, notifier: str, notification_id: str) -> None:
        self.store.insert_rows("notification_deliveries", [[notifier, notification_id, now_utc()]],
                               ["notifier", "id", "delivered_at"])
