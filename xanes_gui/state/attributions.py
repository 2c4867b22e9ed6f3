"""Attribution results kept per (structure, model, site), for every widget that shows them."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal


class Attributions(QObject):
    """The occlusion attributions done so far (:class:`model_core.trust.attribution.SiteAttribution`).

    Signals:
        attributionReady(str, str, int): structure id, model name and site of a new result.
    """

    attributionReady = Signal(str, str, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._results: dict[tuple[str, str, int], Any] = {}

    def put(self, doc_id: str, model_name: str, result: Any) -> None:
        """Keep ``result`` (a SiteAttribution) for its site and announce it."""
        site = int(result.site_index)
        self._results[(doc_id, model_name, site)] = result
        self.attributionReady.emit(doc_id, model_name, site)

    def get(self, doc_id: str, model_name: str, site: int) -> Any | None:
        """The attribution of a site under a model, or None when none was computed."""
        return self._results.get((doc_id, model_name, int(site)))

    def forget(self, doc_id: str) -> None:
        """Drop what is kept for a closed structure."""
        self._results = {k: v for k, v in self._results.items() if k[0] != doc_id}
