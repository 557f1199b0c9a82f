"""Notice delivery: a queue the reconcilers feed and a task that sends, retries and records (never blocking them)."""

from __future__ import annotations

from credop.controller.notices.notifier import NoticeMetrics, Notifier
from credop.controller.notices.settings import NotifySettings

__all__ = ["NoticeMetrics", "Notifier", "NotifySettings"]
